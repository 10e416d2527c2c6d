[profile]
vendor = "V # 1"
model = M
kind = panel
channels = 512
channel_stride = 2
[point zone]
role = alarm
table = input
address = 10
type = bit
bit = 15
per_channel = yes
[point life]
role = lifecheck
table = holding
address = 0
type = uint32
order = badc
[point info1]
role = info
table = input
address = 9
type = float32
order = cdab
