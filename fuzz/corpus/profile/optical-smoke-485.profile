# Optical (scattered-light) point smoke detector with its own RS-485 Modbus RTU
# interface, EN 54-7. The detector measures obscuration itself and also raises
# its own alarm, fault and maintenance bits; the gateway watches both, so a
# detector that alarms by its own logic is never missed.

[profile]
vendor = Generic
model = OSD-485
description = Optical smoke detector, RS-485 Modbus RTU, obscuration in 0.01 %/m
kind = smoke
channels = 1
channel_stride = 1

# Input register 0: obscuration in hundredths of %/m (250 = 2.50 %/m).
# Above 20 %/m the optics are saturated, so a larger reading is a fault.
[point obscuration]
role = value
table = input
address = 0
type = uint16
scale = 0.01
unit = %/m
min = 0
max = 20

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

# Set when drift compensation has run out: the chamber needs cleaning.
[point maintenance]
role = maintenance
table = input
address = 1
type = bit
bit = 2

# Input register 2: chamber contamination in percent of the compensation range.
[point contamination]
role = info
table = input
address = 2
type = uint16
unit = %
min = 0
max = 100
