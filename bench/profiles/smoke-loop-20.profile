# Modbus module of an addressable detector loop that reports the analogue value
# of each of its 20 optical smoke detectors, as the benchmark's building uses:
# 20 detectors per Modbus device, all read with one request per poll.
# Detector n (1..20) has input registers 2(n-1) (obscuration) and 2(n-1)+1
# (status word), so the whole loop is input registers 0..39.

[profile]
vendor = Generic
model = SLM-20
description = Addressable loop module, 20 optical smoke detectors, obscuration in 0.01 %/m
kind = smoke
channels = 20
channel_stride = 2

[point obscuration]
role = value
table = input
address = 0
type = uint16
scale = 0.01
unit = %/m
min = 0
max = 20
per_channel = yes

[point alarm]
role = alarm
table = input
address = 1
type = bit
bit = 0
per_channel = yes

[point fault]
role = fault
table = input
address = 1
type = bit
bit = 1
per_channel = yes
