## Mots des tableaux et résumés de la ligne de commande.
catalog-title = Catalogue des variables ({ $version })
column-feature = variable
column-family = famille
column-concept = concept
column-unit = unité
column-risk = risque si
column-description = description

summary-title = Évaluation au { $cutoff } avec { $model }
summary-scored = clients évalués
summary-bands = { "  " }élevé (p ≥ { $high }) / moyen (p ≥ { $medium }) / faible
summary-rejected = clients non évalués
summary-selected = sélectionnés pour contact
summary-cost = coût attendu
summary-saved = valeur sauvée attendue
summary-net = gain net attendu
summary-value = valeur d'un client sauvé
summary-explained = raisons expliquées
summary-explained-value = { $customers } clients × { $reasons } raisons ({ $lang })
summary-hidden = raisons écartées (du côté sûr du client médian)
summary-drift = dérive (PSI > { $threshold })
summary-no-drift = aucune
summary-wrote = fichier { $name }
summary-actions = actions
summary-plan = plan de contact { $campaign } (envoi le { $date })

## churnlens explain
explain-title = Client { $customer } au { $cutoff } — probabilité de départ { $probability }, risque { $band }
explain-rank = n°
explain-reason = raison
explain-effect = effet sur la probabilité de départ
explain-no-reason = aucun facteur n'élève le risque de ce client au-dessus du client type
explain-value = Valeur du client { $value }, valeur à risque { $at_risk }
explain-card = Fiche d'explication écrite : { $path }
