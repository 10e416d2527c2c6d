[profile]
vendor = V
model = M
kind = heat
[point t]
role = value
table = holding
address = 65534
type = int32
order = dcba
scale = -0.001
offset = 273.15
min = -50
max = 200
unit = degC
