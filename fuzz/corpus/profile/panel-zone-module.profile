# Modbus gateway module of a conventional or addressable fire panel, laid out
# the way Notifier/Honeywell modules do it: one holding register per zone with
# status bits, plus a LifeCheck counter (panel alive) and a DataChange counter.
# Each configured detector of this profile is one panel zone (its channel).

[profile]
vendor = Notifier/Honeywell style
model = Panel Modbus module, 16 zones
description = Fire panel zone status words, LifeCheck and DataChange counters
kind = panel
channels = 16
channel_stride = 1

# Holding register 0: increments while the panel is alive. If it stands still
# for lifecheck_timeout the gateway raises a panel communication fault.
[point lifecheck]
role = lifecheck
table = holding
address = 0
type = uint16

# Holding register 1: increments on every change of panel data.
[point datachange]
role = info
table = holding
address = 1
type = uint16

# Holding registers 100..115: status word of zone 1..16.
[point zone_alarm]
role = alarm
table = holding
address = 100
type = bit
bit = 0
per_channel = yes

[point zone_prealarm]
role = prealarm
table = holding
address = 100
type = bit
bit = 1
per_channel = yes

[point zone_fault]
role = fault
table = holding
address = 100
type = bit
bit = 2
per_channel = yes

# Zone disabled (isolated) at the panel: it cannot send a fire alarm, and the
# disablement itself is reported.
[point zone_disabled]
role = disabled
table = holding
address = 100
type = bit
bit = 3
per_channel = yes
