# Actions de fidélisation : pourquoi un client sélectionné a reçu une action, ou aucune.
action-none = aucune règle d'action ne s'applique
action-pressure = { $rule } : contacté { $days ->
    [0] aujourd'hui
    [1] hier
   *[other] il y a { $days } jours
  }, la règle demande { $min } jours sans contact
action-capacity = { $rule } : capacité de { $capacity } atteinte
action-generic = Contact de fidélisation
action-absent = la règle { $rule } lit { $names }, absent de ces données : compté comme manquant
