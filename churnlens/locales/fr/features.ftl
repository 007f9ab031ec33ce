## Les mots du catalogue de variables. Un message par modèle de variable (sa clé) :
##   valeur       la phrase de la raison, seulement quand la forme générique ne convient pas
##                (générique : « <libellé> : <valeur> (client médian : <réf>) », voir reason / reason-median)
##   .label       groupe nominal qui ouvre la raison
##   .short       libellé court des graphiques
##   .description ce que mesure la variable
## Variables : $value (mise en forme), $ref (référence mise en forme, ou « none »), $window,
## $short_window, $long_window, $usual (écart habituel, ou « none »), $sign, $scale, $flag, $attribute.

-median = client médian

reason = { $label } : { $value }
reason-median = { $label } : { $value } ({ -median } : { $ref })

days-since-last-purchase = { $usual ->
        [none] { $ref ->
            [none] Dernier achat { $value }
           *[other] Dernier achat { $value } ({ -median } : { $ref })
        }
       *[other] Dernier achat { $value }, d'habitude un achat tous les { $usual }
    }
    .label = Dernier achat
    .short = Dernier achat
    .description = Jours depuis le dernier achat du client
days-since-first-purchase = { $ref ->
        [none] Premier achat { $value }
       *[other] Premier achat { $value } ({ -median } : { $ref })
    }
    .label = Premier achat
    .short = Premier achat
    .description = Jours depuis le premier achat du client
purchase-count =
    .label = Achats sur { $window }
    .short = Achats ({ $window })
    .description = Nombre d'achats sur { $window }
spend = { $sign ->
        [negative] Retours supérieurs aux achats sur { $window } : { $value } remboursés au net
       *[other] { $ref ->
            [none] Dépenses sur { $window } : { $value }
           *[other] Dépenses sur { $window } : { $value } ({ -median } : { $ref })
        }
    }
    .label = Dépenses sur { $window }
    .short = Dépenses ({ $window })
    .description = Montant dépensé sur { $window }, remboursements déduits
avg-basket =
    .label = Panier moyen sur { $window }
    .short = Panier moyen ({ $window })
    .description = Montant moyen d'un achat sur { $window } (hors remboursements)
refund-share =
    .label = Part des achats retournés sur { $window }
    .short = Retours ({ $window })
    .description = Part du montant acheté sur { $window } qui a été remboursée
purchase-count-lifetime =
    .label = Achats depuis le premier
    .short = Achats (au total)
    .description = Nombre d'achats depuis le premier
spend-lifetime = { $sign ->
        [negative] Retours supérieurs aux achats depuis le premier : { $value } remboursés au net
       *[other] { $ref ->
            [none] Dépenses totales : { $value }
           *[other] Dépenses totales : { $value } ({ -median } : { $ref })
        }
    }
    .label = Dépenses totales
    .short = Dépenses totales
    .description = Montant dépensé depuis le premier achat, remboursements déduits
purchase-gap-mean =
    .label = Écart habituel entre deux achats
    .short = Écart entre achats
    .description = Nombre moyen de jours entre deux achats
purchase-gap-std =
    .label = Variation de l'écart entre deux achats
    .short = Achats irréguliers
    .description = Dispersion (écart type) du nombre de jours entre deux achats
overdue-ratio = { $ref ->
        [none] Temps depuis le dernier achat : { $value } l'écart habituel
       *[other] Temps depuis le dernier achat : { $value } l'écart habituel ({ -median } : { $ref })
    }
    .label = Temps depuis le dernier achat, rapporté à l'écart habituel
    .short = Retard du prochain achat
    .description = Jours depuis le dernier achat divisés par l'écart habituel entre deux achats (la fenêtre d'activité pour les clients à un seul achat)
current-gap-vs-longest = { $ref ->
        [none] Attente actuelle depuis le dernier achat : { $value } le plus long écart passé
       *[other] Attente actuelle depuis le dernier achat : { $value } le plus long écart passé ({ -median } : { $ref })
    }
    .label = Attente actuelle, rapportée au plus long écart passé
    .short = Plus longue attente
    .description = Jours depuis le dernier achat divisés par le plus long écart entre deux jours d'achat passés du client
btyd-p-alive =
    .label = Probabilité d'être encore un acheteur actif
    .short = Toujours actif (BG/NBD)
    .description = Probabilité que le client achète encore (ne soit pas parti sans le dire), d'après un modèle BG/NBD des jours d'achat de tous les clients avant la date de référence
purchase-trend = { $ref ->
        [none] Rythme d'achat sur { $short_window } : { $value } celui sur { $long_window }
       *[other] Rythme d'achat sur { $short_window } : { $value } celui sur { $long_window } ({ -median } : { $ref })
    }
    .label = Rythme d'achat sur { $short_window }, rapporté à celui sur { $long_window }
    .short = Rythme d'achat ({ $short_window })
    .description = Rythme d'achat sur { $short_window } divisé par celui sur { $long_window }
spend-trend = { $ref ->
        [none] Rythme de dépense sur { $short_window } : { $value } celui sur { $long_window }
       *[other] Rythme de dépense sur { $short_window } : { $value } celui sur { $long_window } ({ -median } : { $ref })
    }
    .label = Rythme de dépense sur { $short_window }, rapporté à celui sur { $long_window }
    .short = Rythme de dépense ({ $short_window })
    .description = Dépense quotidienne sur { $short_window } divisée par celle sur { $long_window }
distinct-categories =
    .label = Catégories de produits achetées sur { $window }
    .short = Catégories ({ $window })
    .description = Nombre de catégories de produits différentes achetées sur { $window }
distinct-channels =
    .label = Canaux de vente utilisés sur { $window }
    .short = Canaux ({ $window })
    .description = Nombre de canaux de vente différents utilisés sur { $window }

program-enrolled = { $flag ->
        [1] Membre du programme de fidélité
       *[0] Non-membre du programme de fidélité
    }
    .label = Adhésion au programme de fidélité
    .short = Membre du programme
    .description = 1 si le client a rejoint le programme de fidélité (au moins un événement), sinon 0
program-enrolment-age = { $ref ->
        [none] Adhésion au programme de fidélité { $value }
       *[other] Adhésion au programme de fidélité { $value } ({ -median } : { $ref })
    }
    .label = Adhésion au programme de fidélité
    .short = Membre depuis
    .description = Jours depuis l'adhésion du client au programme de fidélité
points-balance =
    .label = Solde de points
    .short = Solde de points
    .description = Solde de points de fidélité (gagnés moins utilisés)
points-earned =
    .label = Points gagnés sur { $window }
    .short = Points gagnés ({ $window })
    .description = Points de fidélité gagnés sur { $window }
points-redeemed =
    .label = Points utilisés sur { $window }
    .short = Points utilisés ({ $window })
    .description = Points de fidélité utilisés sur { $window }
redemption-rate = { $scale ->
        [times] Points utilisés sur { $window } : { $value } les points gagnés
       *[share] { $ref ->
            [none] Points utilisés sur { $window } : { $value } des points gagnés
           *[other] Points utilisés sur { $window } : { $value } des points gagnés ({ -median } : { $ref })
        }
    }
    .label = Points utilisés sur { $window }, rapportés aux points gagnés
    .short = Points utilisés / gagnés ({ $window })
    .description = Points utilisés divisés par points gagnés sur { $window }
days-since-last-program-activity = { $ref ->
        [none] Dernière activité dans le programme de fidélité { $value }
       *[other] Dernière activité dans le programme de fidélité { $value } ({ -median } : { $ref })
    }
    .label = Dernière activité dans le programme de fidélité
    .short = Dernière activité programme
    .description = Jours depuis la dernière action du client dans le programme de fidélité (hors offres reçues et changements de niveau)
logins =
    .label = Connexions au programme sur { $window }
    .short = Connexions ({ $window })
    .description = Connexions au programme de fidélité sur { $window }
offers-received =
    .label = Offres reçues sur { $window }
    .short = Offres reçues ({ $window })
    .description = Offres envoyées au client sur { $window }
offers-viewed =
    .label = Offres consultées sur { $window }
    .short = Offres consultées ({ $window })
    .description = Offres consultées par le client sur { $window }
offers-completed =
    .label = Offres utilisées sur { $window }
    .short = Offres utilisées ({ $window })
    .description = Offres utilisées par le client sur { $window }
offer-completion-rate = { $ref ->
        [none] Offres utilisées sur { $window } : { $value } des offres reçues
       *[other] Offres utilisées sur { $window } : { $value } des offres reçues ({ -median } : { $ref })
    }
    .label = Offres utilisées sur { $window }, rapportées aux offres reçues
    .short = Offres utilisées / reçues ({ $window })
    .description = Offres utilisées divisées par offres reçues sur { $window }
program-other-events =
    .label = Autres événements du programme sur { $window }
    .short = Autres événements du programme
    .description = Événements du programme de fidélité d'autres types sur { $window }
tier =
    .label = Niveau de fidélité
    .short = Niveau
    .description = Niveau de fidélité actuel (dernier niveau connu avant la date de référence)
tier-rank =
    .label = Niveau de fidélité
    .short = Niveau
    .description = Niveau de fidélité actuel en rang (0 = basique, 1 = argent, 2 = or, 3 = platine)
tier-downgraded = { $flag ->
        [1] Baisse de niveau de fidélité sur { $window }
       *[0] Aucune baisse de niveau de fidélité sur { $window }
    }
    .label = Baisse de niveau de fidélité sur { $window }
    .short = Baisse de niveau
    .description = 1 si le niveau du client est plus bas qu'il y a { $window }, sinon 0

support-contacts =
    .label = Contacts avec le service client sur { $window }
    .short = Contacts service client ({ $window })
    .description = Contacts avec le service client sur { $window }
support-complaints =
    .label = Réclamations sur { $window }
    .short = Réclamations ({ $window })
    .description = Réclamations faites au service client sur { $window }
support-open-issues =
    .label = Demandes au service client non résolues
    .short = Demandes non résolues
    .description = Contacts avec le service client non résolus
support-fcr-rate = { $ref ->
        [none] Contacts avec le service client résolus dès le premier échange : { $value }
       *[other] Contacts avec le service client résolus dès le premier échange : { $value } ({ -median } : { $ref })
    }
    .label = Contacts avec le service client résolus dès le premier échange
    .short = Résolution au premier contact
    .description = Part des contacts avec le service client résolus dès le premier contact
support-handle-minutes =
    .label = Durée moyenne de traitement au service client
    .short = Durée de traitement
    .description = Durée moyenne de traitement des contacts du client avec le service client
csat-last =
    .label = Dernière note de satisfaction (CSAT)
    .short = Dernière CSAT
    .description = Dernière note de satisfaction client (CSAT, 1–5)
csat-mean =
    .label = Note de satisfaction moyenne (CSAT)
    .short = CSAT moyenne
    .description = Note de satisfaction client moyenne (CSAT, 1–5)
nps-last =
    .label = Dernière note de recommandation (NPS)
    .short = Dernier NPS
    .description = Dernière réponse à « nous recommanderiez-vous ? » (NPS, 0–10)
nps-category =
    .label = Dernière réponse NPS
    .short = Catégorie NPS
    .description = Catégorie de la dernière réponse NPS (détracteur 0–6, passif 7–8, promoteur 9–10)
ces-mean =
    .label = Effort client moyen (CES)
    .short = Effort (CES)
    .description = Score d'effort client moyen (CES, 1 = très facile à 7 = très difficile)
days-since-last-contact = { $ref ->
        [none] Dernier contact avec le service client { $value }
       *[other] Dernier contact avec le service client { $value } ({ -median } : { $ref })
    }
    .label = Dernier contact avec le service client
    .short = Dernier contact service client
    .description = Jours depuis le dernier contact du client avec le service client

campaign-contacts =
    .label = Contacts de fidélisation sur { $window }
    .short = Contacts de fidélisation ({ $window })
    .description = Contacts de campagnes de fidélisation reçus par le client sur { $window } (hors groupe témoin)
campaign-holdouts =
    .label = Placements en groupe témoin d'une campagne sur { $window }
    .short = Groupe témoin
    .description = Nombre de fois où le client a été sélectionné par une campagne de fidélisation mais tiré au sort dans le groupe témoin sur { $window }
campaign-cost =
    .label = Coût des contacts de fidélisation sur { $window }
    .short = Coût de fidélisation
    .description = Coût des contacts de fidélisation reçus par le client sur { $window }
days-since-last-campaign-contact = { $ref ->
        [none] Dernier contact de fidélisation { $value }
       *[other] Dernier contact de fidélisation { $value } ({ -median } : { $ref })
    }
    .label = Dernier contact de fidélisation
    .short = Dernier contact de fidélisation
    .description = Jours depuis le dernier contact de campagne de fidélisation reçu par le client
last-campaign-action =
    .label = Dernière action de fidélisation
    .short = Dernière action de fidélisation
    .description = Action du dernier contact de campagne de fidélisation reçu par le client
last-campaign-holdout = { $flag ->
        [1] Groupe témoin de la dernière campagne qui a sélectionné ce client
       *[0] Contact par la dernière campagne qui a sélectionné ce client
    }
    .label = Groupe témoin de la dernière campagne
    .short = Dernier groupe témoin
    .description = 1 si la dernière campagne de fidélisation qui a sélectionné le client l'a placé dans le groupe témoin, sinon 0

tenure = { $ref ->
        [none] Client depuis { $value }
       *[other] Client depuis { $value } ({ -median } : { $ref })
    }
    .label = Ancienneté
    .short = Ancienneté
    .description = Jours depuis l'inscription du client (ou son premier achat si la date d'inscription est inconnue)
attribute =
    .label = { $attribute }
    .short = { $attribute }
    .description = Attribut client « { $attribute } » (de la table des clients)
