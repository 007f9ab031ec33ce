# Mots génériques : durées, points, dates relatives.
-nbsp = {"\u00A0"}
points = { $count ->
        [one] { $value }{ -nbsp }pt
       *[other] { $value }{ -nbsp }pts
    }
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

window = { $unit ->
        [months] { $count }{ -nbsp }mois
       *[days] { $count ->
            [one] { $count }{ -nbsp }jour
           *[other] { $count }{ -nbsp }jours
        }
    }
times = { $value }{ -nbsp }fois
points-count = { $count ->
        [one] { $shown }{ -nbsp }point
       *[other] { $shown }{ -nbsp }points
    }
minutes = { $shown }{ -nbsp }min
score = { $shown }/{ $scale }
yes-no = { $flag ->
        [1] oui
       *[0] non
    }

risk-band = { $band ->
        [high] élevé
        [medium] moyen
       *[low] faible
    }
family = { $kind ->
        [purchases] achats
        [btyd] modèle d'achat (BG/NBD)
        [program] programme de fidélité
        [support] service client
        [contacts] campagnes de fidélisation
       *[profile] profil
    }
unit = { $kind ->
        [days] jours
        [days_ago] jours écoulés
        [count] nombre
        [amount] montant
        [share] part
        [ratio] rapport
        [points] points
        [minutes] minutes
        [score] note
        [flag] oui / non
        [category] catégorie
        [rank] rang
       *[number] nombre
    }
risk-direction = { $kind ->
        [higher] plus haut
        [lower] plus bas
       *[category] certaines valeurs
    }
concept = { $kind ->
        [recency] temps depuis le dernier achat
        [seniority] ancienneté
        [activity] volume d'achats
        [basket] panier
        [returns] retours
        [rhythm] rythme d'achat
        [trend] tendance d'achat
        [variety] variété des achats
        [membership] adhésion au programme
        [points] points de fidélité
        [program_activity] activité dans le programme
        [offers] offres
        [tier] niveau de fidélité
        [support_contacts] contacts avec le service client
        [complaints] réclamations
        [open_issues] demandes non résolues
        [resolution] traitement des demandes
        [satisfaction] satisfaction
        [recommendation] recommandation
        [effort] effort client
        [campaigns] campagnes de fidélisation passées
       *[other] { $kind }
    }

## Valeurs de catégories dans les phrases (les autres sont écrites telles quelles, « _ » en espace).
value-basic = Basique
value-silver = Argent
value-gold = Or
value-platinum = Platine
value-detractor = détracteur
value-passive = passif
value-promoter = promoteur
value-service_recovery = appel de rattrapage
value-points_reminder = rappel des points
value-win_back = offre de reconquête

reject = { $code ->
        [cancelled] adhésion résiliée avant la date de référence
        [no_events] aucun événement dans aucune table (présent seulement dans la table des clients)
        [first_event_after] premier événement après la date de référence
        [no_purchase_before] aucun achat avant la date de référence
        [inactive] aucun achat dans les { $days } jours précédant la date de référence
       *[other] hors de la population active à la date de référence
    }
