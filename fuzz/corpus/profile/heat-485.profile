# Point heat detector (fixed temperature, EN 54-5 class A1 by default levels)
# with its own RS-485 Modbus RTU interface. Temperature as a signed 16-bit
# register in tenths of a degree.

[profile]
vendor = Generic
model = HD-485
description = Heat detector, RS-485 Modbus RTU, temperature in 0.1 degC
kind = heat
channels = 1
channel_stride = 1

# Input register 0: temperature in 0.1 degC (-400 .. 1500). Outside -40..150 degC
# the sensor is broken or disconnected.
[point temperature]
role = value
table = input
address = 0
type = int16
scale = 0.1
unit = degC
min = -40
max = 150

# Input register 1: status word.
[point alarm]
role = alarm
table = input
address = 1
type = bit
bit = 0

[point fault]
role = fault
table = input
address = 1
type = bit
bit = 1
