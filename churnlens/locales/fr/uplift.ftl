## Ciblage par uplift (score --target uplift) : pourquoi une action a été choisie, et les chiffres côte à côte.

uplift-reason = { $reason } — { $points } d'effet
uplift-action-reason = plus forte valeur incrémentale attendue : { $value } (uplift { $points })
uplift-target = ciblage
uplift-target-value = par uplift : valeur incrémentale attendue (uplift × valeur − coût), action par action
uplift-list = valeur incrémentale attendue, liste uplift
uplift-risk-list = valeur incrémentale attendue, liste par risque au même budget
uplift-list-value = { $value } ({ $customers } clients, coût { $cost })
uplift-ratio = liste uplift / liste par risque
uplift-over-budget = clients écartés (budget)
uplift-over-capacity = { $rule } : capacité atteinte, action suivante ou aucune
uplift-model = modèle d'uplift
uplift-target-budget = par uplift, budget de { $amount } : valeur incrémentale attendue (uplift × valeur − coût)
uplift-no-model = l'action { $action } n'a pas de modèle d'uplift (train-uplift l'a écartée ou ne l'a jamais vue) : jamais choisie
uplift-note = remarque
