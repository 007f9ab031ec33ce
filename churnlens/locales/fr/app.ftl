## The explanation card's and the web app's words (fr). Placeholders are Fluent variables;
## counts ($n) pick their plural form by the language's CLDR rule.

card_title = Explication du risque d'attrition
customer = Client
probability = Probabilité d'attrition
band-label = Niveau de risque
value = Valeur client
var = Valeur à risque
why = Pourquoi ce client risque de partir
no_reason = Aucun facteur n'élève le risque de ce client au-dessus du risque moyen des clients.
effect_title = Variation de la probabilité d'attrition expliquée par cette raison, en points
chart = Ce qui fait varier la probabilité d'attrition de ce client
chart_desc = Cascade de « { $average } » ({ $start }) à « { $this } » ({ $end }), une barre par facteur : { $steps }.
average = Risque moyen des clients
this = Ce client
others = { $n } autres facteurs
axis = Probabilité d'attrition ; chaque barre est une variation en points
raises = augmente le risque (+)
lowers = réduit le risque (−, hachuré)
cutoff = Données antérieures au { $date }
model = Modèle { $name }
horizon = Attrition dans les { $days }
trained_through = entraîné jusqu'au { $date }
high = élevé
medium = moyen
low = faible
action = Action suggérée
action_for = Pour un risque lié { $family }
note = Les facteurs sont les données du client qui font le plus varier la probabilité d'attrition calculée par le modèle, à partir du risque moyen des clients ; chacun est donné en points de probabilité. Un facteur est une association apprise par le modèle, pas une cause démontrée.
family_purchases = aux achats
family_program = au programme de fidélité
family_support = au service client
family_btyd = au rythme d'achat
family_contacts = aux campagnes passées
family_profile = au profil du client
family_label_purchases = Achats
family_label_program = Programme
family_label_support = Service client
family_label_btyd = Modèle d'achat
family_label_contacts = Campagnes passées
family_label_profile = Profil
timeline = Les 12 derniers mois
timeline_desc = Activité des 12 mois précédant le { $date } : { $purchases } ({ $returns }), { $program }, { $support } ({ $complaints }, { $unresolved }).
n_purchases = { $n ->
        [one] { $n } achat
       *[other] { $n } achats
    }
n_returns = { $n ->
        [one] { $n } retour
       *[other] { $n } retours
    }
n_program = { $n ->
        [one] { $n } événement du programme
       *[other] { $n } événements du programme
    }
n_support = { $n ->
        [one] { $n } contact avec le service client
       *[other] { $n } contacts avec le service client
    }
n_complaints = { $n ->
        [one] { $n } réclamation
       *[other] { $n } réclamations
    }
n_unresolved = { $n ->
        [one] { $n } non résolu
       *[other] { $n } non résolus
    }
lane_purchases = Achats
lane_program = Programme
lane_support = Service
ev_purchase = achat
ev_return = retour
ev_points = points
ev_login = connexion
ev_offer = offre
ev_tier = changement de palier
ev_enrolled = adhésion
ev_other = autre événement
ev_contact = contact
ev_complaint = réclamation
ev_unresolved = non résolu
ev_times = { $n } fois
no_timeline = Aucun événement dans les 12 mois précédant la date d'arrêté.
app = churnlens
skip = Aller au contenu
language = Langue
switch_to = English
switch_lang = en
switch_title = Show in English
logout = Se déconnecter
login_title = Connexion
login_intro = Ce serveur churnlens est protégé. Saisissez son jeton d'accès.
token = Jeton d'accès
sign_in = Se connecter
bad_token = Jeton incorrect.
bad_form = Le formulaire a expiré. Veuillez réessayer.
campaign = Campagne
campaigns = Campagnes
open = Ouvrir
no_campaign = Aucune campagne dans { $path }. Créez-en une avec churnlens score DONNÉES --out FICHIER.
campaign_title = Campagne { $name }
cutoff_short = Date d'arrêté
model_short = Modèle
trained_short = Entraîné jusqu'au
horizon_short = Horizon
scored = Clients évalués
rejected = Non évalués
selected_count = Sélectionnés pour contact
rule = Règle
expected_cost = Coût attendu
saved_value = Valeur sauvée attendue
net = Gain net attendu
rule_top = les { $n } plus fortes probabilités d'attrition
rule_threshold = probabilité d'attrition ≥ { $p }
rule_budget = budget de { $amount }, meilleur gain net attendu
rule_high = niveau de risque élevé
filters = Filtrer la liste
f_band = Niveau de risque
f_selected = Sélectionné
f_family = Famille de la raison principale
f_search = Identifiant client commençant par
f_size = Lignes par page
all = Tous
yes = Oui
no = Non
apply = Appliquer
reset = Réinitialiser
download = Télécharger ces { $n } lignes (CSV)
matches = { $n } clients correspondent
table_caption = Clients de la campagne, { $n } correspondants, triés par { $column } ({ $direction })
ascending = croissant
descending = décroissant
sort_by = Trier par { $column }
col_rank = Rang
col_customer_id = Client
col_churn_probability = Probabilité
col_risk_band = Niveau
col_customer_value = Valeur
col_value_at_risk = Valeur à risque
col_selected = Sélectionné
col_top_reason = Raison principale
col_action = Action suggérée
no_rows = Aucun client ne correspond à ces filtres.
pages = Pages
previous = Précédente
next = Suivante
page_of = Page { $page } sur { $pages }
back = Retour à la liste
not_found = Introuvable
no_customer = Le client { $id } n'est pas dans la campagne { $campaign }.
no_data = Les données du client ne sont pas disponibles : { $why }
other_model = Cette fiche est calculée avec le modèle { $served } ; la campagne a été évaluée avec { $scored }.
error = Une erreur est survenue
rule_uplift = par uplift : pour chaque client, l'action de plus forte valeur incrémentale attendue
rule_uplift_budget = par uplift, budget de { $amount } : plus forte valeur incrémentale attendue
uplift_list_value = Valeur incrémentale attendue, cette liste
risk_list_value = Valeur incrémentale attendue, liste par risque au même budget
list_note = { $customers } clients, coût { $cost }
