# Retention actions: why a selected customer got an action, or none.
action-none = no action rule fits
action-pressure = { $rule }: contacted { $days ->
    [0] today
    [1] yesterday
   *[other] { $days } days ago
  }, the rule wants { $min } days without contact
action-capacity = { $rule }: capacity of { $capacity } reached
action-generic = Retention contact
action-absent = rule { $rule } reads { $names }, absent from this data: counted as missing
