# The HD-485 heat detector family, firmware that reports the temperature as an
# IEEE 754 float32 in two input registers, low word first (word order cdab),
# as many Modbus devices built on little-endian controllers do.

[profile]
vendor = Generic
model = HD-485F
description = Heat detector, RS-485 Modbus RTU, float32 temperature (low word first)
kind = heat
channels = 1
channel_stride = 1

# Input registers 10-11: temperature in degC, float32, word order cdab.
[point temperature]
role = value
table = input
address = 10
type = float32
order = cdab
unit = degC
min = -40
max = 150

# Input register 1: status word, as on the HD-485.
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
