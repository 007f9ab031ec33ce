# Generic words: durations, points, dates relative to today.
points = { $value } pts
duration-days = { $count ->
    [one] { $count } day
   *[other] { $count } days
  }
duration-months = { $count ->
    [one] { $count } month
   *[other] { $count } months
  }
duration-years = { $count ->
    [one] { $shown } year
   *[other] { $shown } years
  }
ago = { $days ->
    [0] today
    [1] yesterday
   *[other] { $duration } ago
  }
