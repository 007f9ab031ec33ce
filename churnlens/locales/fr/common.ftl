# Mots génériques : durées, points, dates relatives.
-nbsp = {"\u00A0"}
points = { $value }{ -nbsp }pts
duration-days = { $count ->
    [one] { $count }{ -nbsp }jour
   *[other] { $count }{ -nbsp }jours
  }
duration-months = { $count }{ -nbsp }mois
duration-years = { $count ->
    [one] { $shown }{ -nbsp }an
   *[other] { $shown }{ -nbsp }ans
  }
ago = { $days ->
    [0] aujourd'hui
    [1] hier
   *[other] il y a { $duration }
  }
