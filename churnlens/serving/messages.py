"""Every text of the explanation card and the web app, in English and French.

One catalog for both (the card is the same template in ``churnlens explain --html`` and in
the app). Texts are ``str.format`` templates; the templates call ``t("key", n=...)``.
French follows French typography: a no-break space (U+00A0) before ``:``, a narrow
no-break space (U+202F) before ``; ? !`` and inside « ». One French word for churn:
« attrition ».
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from churnlens.serving.formatting import babel_locale

_ = "\u00a0"  # before a colon (French)
__ = "\u202f"  # inside « » and before ; ? !

#: A text, or its plural forms by CLDR category (``one``, ``other``) for texts with a count ``n``.
Text = str | dict[str, str]

MESSAGES: dict[str, dict[str, Text]] = {
    "en": {
        # ------------------------------------------------------------------ card
        "card_title": "Churn risk explanation",
        "customer": "Customer",
        "probability": "Churn probability",
        "band": "Risk band",
        "value": "Customer value",
        "var": "Value at risk",
        "why": "Why this customer may leave",
        "no_reason": "No factor raises this customer's risk above the average customer's.",
        "effect_title": "Change of churn probability this reason explains, in percentage points",
        "chart": "What moves this customer's churn probability",
        "chart_desc": "Waterfall from “{average}” ({start}) to “{this}” ({end}), one bar per factor: {steps}.",
        "average": "Average customer's risk",
        "this": "This customer",
        "others": "{n} other factors",
        "axis": "Churn probability; each bar is a change in percentage points",
        "raises": "raises the risk (+)",
        "lowers": "lowers the risk (−, hatched)",
        "cutoff": "Data before {date}",
        "model": "Model {name}",
        "horizon": "Churn within {days}",
        "trained_through": "trained through {date}",
        "high": "high",
        "medium": "medium",
        "low": "low",
        "action": "Suggested action",
        "action_for": "For a risk driven by {family}",
        "note": "The factors are the customer's data that move the model's churn probability most, measured "
        "from the average customer's risk; each one is given in percentage points of churn probability. "
        "A factor is an association the model learned, not a proven cause.",
        # ------------------------------------------------------------------ families
        "family_purchases": "purchases",
        "family_program": "the loyalty programme",
        "family_support": "customer service",
        "family_profile": "the customer's profile",
        "family_label_purchases": "Purchases",
        "family_label_program": "Programme",
        "family_label_support": "Customer service",
        "family_label_profile": "Profile",
        # ------------------------------------------------------------------ timeline
        "timeline": "The last 12 months",
        "timeline_desc": "Activity in the 12 months before {date}: {purchases} ({returns}), {program}, "
        "{support} ({complaints}, {unresolved}).",
        "n_purchases": {"one": "{n} purchase", "other": "{n} purchases"},
        "n_returns": {"one": "{n} return", "other": "{n} returns"},
        "n_program": {"one": "{n} programme event", "other": "{n} programme events"},
        "n_support": {"one": "{n} customer-service contact", "other": "{n} customer-service contacts"},
        "n_complaints": {"one": "{n} complaint", "other": "{n} complaints"},
        "n_unresolved": {"one": "{n} unresolved", "other": "{n} unresolved"},
        "lane_purchases": "Purchases",
        "lane_program": "Programme",
        "lane_support": "Service",
        "ev_purchase": "purchase",
        "ev_return": "return",
        "ev_points": "points",
        "ev_login": "login",
        "ev_offer": "offer",
        "ev_tier": "tier change",
        "ev_enrolled": "enrolment",
        "ev_other": "other event",
        "ev_contact": "contact",
        "ev_complaint": "complaint",
        "ev_unresolved": "unresolved",
        "ev_times": "{n} times",
        "no_timeline": "No event in the 12 months before the cutoff.",
        # ------------------------------------------------------------------ app
        "app": "churnlens",
        "skip": "Skip to content",
        "language": "Language",
        "switch_to": "Français",
        "switch_lang": "fr",
        "switch_title": "Afficher en français",
        "logout": "Log out",
        "login_title": "Sign in",
        "login_intro": "This churnlens server is protected. Enter its access token.",
        "token": "Access token",
        "sign_in": "Sign in",
        "bad_token": "Wrong token.",
        "bad_form": "The form expired. Please try again.",
        "campaign": "Campaign",
        "campaigns": "Campaigns",
        "open": "Open",
        "no_campaign": "No campaign found in {path}. Write one with churnlens score DATA --out FILE.",
        "campaign_title": "Campaign {name}",
        "cutoff_short": "Cutoff",
        "model_short": "Model",
        "trained_short": "Trained through",
        "horizon_short": "Horizon",
        "scored": "Customers scored",
        "rejected": "Not scored",
        "selected_count": "Selected for contact",
        "rule": "Rule",
        "expected_cost": "Expected cost",
        "saved_value": "Expected saved value",
        "net": "Expected net",
        "rule_top": "top {n} by churn probability",
        "rule_threshold": "churn probability ≥ {p}",
        "rule_budget": "budget {amount}, highest expected net value",
        "rule_high": "high risk band",
        "filters": "Filter the list",
        "f_band": "Risk band",
        "f_selected": "Selected",
        "f_family": "Top reason's family",
        "f_search": "Customer id starts with",
        "f_size": "Rows per page",
        "all": "All",
        "yes": "Yes",
        "no": "No",
        "apply": "Apply",
        "reset": "Reset",
        "download": "Download these {n} rows (CSV)",
        "matches": "{n} customers match",
        "table_caption": "Customers of the campaign, {n} matching, sorted by {column} ({direction})",
        "ascending": "ascending",
        "descending": "descending",
        "sort_by": "Sort by {column}",
        "col_rank": "Rank",
        "col_customer_id": "Customer",
        "col_churn_probability": "Probability",
        "col_risk_band": "Band",
        "col_customer_value": "Value",
        "col_value_at_risk": "Value at risk",
        "col_selected": "Selected",
        "col_top_reason": "Top reason",
        "col_action": "Suggested action",
        "no_rows": "No customer matches these filters.",
        "pages": "Pages",
        "previous": "Previous",
        "next": "Next",
        "page_of": "Page {page} of {pages}",
        "back": "Back to the list",
        "not_found": "Not found",
        "no_customer": "Customer {id} is not in campaign {campaign}.",
        "no_data": "The customer's data is not available: {why}",
        "other_model": "This card is computed with model {served}; the campaign was scored with {scored}.",
        "error": "Something went wrong",
    },
    "fr": {
        "card_title": "Explication du risque d'attrition",
        "customer": "Client",
        "probability": "Probabilité d'attrition",
        "band": "Niveau de risque",
        "value": "Valeur client",
        "var": "Valeur à risque",
        "why": "Pourquoi ce client risque de partir",
        "no_reason": "Aucun facteur n'élève le risque de ce client au-dessus du risque moyen des clients.",
        "effect_title": "Variation de la probabilité d'attrition expliquée par cette raison, en points",
        "chart": "Ce qui fait varier la probabilité d'attrition de ce client",
        "chart_desc": f"Cascade de «{__}{{average}}{__}» ({{start}}) à «{__}{{this}}{__}» ({{end}}), une barre par "
        f"facteur{_}: {{steps}}.",
        "average": "Risque moyen des clients",
        "this": "Ce client",
        "others": "{n} autres facteurs",
        "axis": f"Probabilité d'attrition{__}; chaque barre est une variation en points",
        "raises": "augmente le risque (+)",
        "lowers": "réduit le risque (−, hachuré)",
        "cutoff": "Données antérieures au {date}",
        "model": "Modèle {name}",
        "horizon": "Attrition dans les {days}",
        "trained_through": "entraîné jusqu'au {date}",
        "high": "élevé",
        "medium": "moyen",
        "low": "faible",
        "action": "Action suggérée",
        "action_for": "Pour un risque lié {family}",
        "note": "Les facteurs sont les données du client qui font le plus varier la probabilité d'attrition "
        f"calculée par le modèle, à partir du risque moyen des clients{__}; chacun est donné en points de "
        "probabilité. Un facteur est une association apprise par le modèle, pas une cause démontrée.",
        "family_purchases": "aux achats",
        "family_program": "au programme de fidélité",
        "family_support": "au service client",
        "family_profile": "au profil du client",
        "family_label_purchases": "Achats",
        "family_label_program": "Programme",
        "family_label_support": "Service client",
        "family_label_profile": "Profil",
        "timeline": "Les 12 derniers mois",
        "timeline_desc": f"Activité des 12 mois précédant le {{date}}{_}: {{purchases}} ({{returns}}), {{program}}, "
        "{support} ({complaints}, {unresolved}).",
        "n_purchases": {"one": "{n} achat", "other": "{n} achats"},
        "n_returns": {"one": "{n} retour", "other": "{n} retours"},
        "n_program": {"one": "{n} événement du programme", "other": "{n} événements du programme"},
        "n_support": {"one": "{n} contact avec le service client", "other": "{n} contacts avec le service client"},
        "n_complaints": {"one": "{n} réclamation", "other": "{n} réclamations"},
        "n_unresolved": {"one": "{n} non résolu", "other": "{n} non résolus"},
        "lane_purchases": "Achats",
        "lane_program": "Programme",
        "lane_support": "Service",
        "ev_purchase": "achat",
        "ev_return": "retour",
        "ev_points": "points",
        "ev_login": "connexion",
        "ev_offer": "offre",
        "ev_tier": "changement de palier",
        "ev_enrolled": "adhésion",
        "ev_other": "autre événement",
        "ev_contact": "contact",
        "ev_complaint": "réclamation",
        "ev_unresolved": "non résolu",
        "ev_times": "{n} fois",
        "no_timeline": "Aucun événement dans les 12 mois précédant la date d'arrêté.",
        "app": "churnlens",
        "skip": "Aller au contenu",
        "language": "Langue",
        "switch_to": "English",
        "switch_lang": "en",
        "switch_title": "Show in English",
        "logout": "Se déconnecter",
        "login_title": "Connexion",
        "login_intro": "Ce serveur churnlens est protégé. Saisissez son jeton d'accès.",
        "token": "Jeton d'accès",
        "sign_in": "Se connecter",
        "bad_token": "Jeton incorrect.",
        "bad_form": "Le formulaire a expiré. Veuillez réessayer.",
        "campaign": "Campagne",
        "campaigns": "Campagnes",
        "open": "Ouvrir",
        "no_campaign": "Aucune campagne dans {path}. Créez-en une avec churnlens score DONNÉES --out FICHIER.",
        "campaign_title": "Campagne {name}",
        "cutoff_short": "Date d'arrêté",
        "model_short": "Modèle",
        "trained_short": "Entraîné jusqu'au",
        "horizon_short": "Horizon",
        "scored": "Clients évalués",
        "rejected": "Non évalués",
        "selected_count": "Sélectionnés pour contact",
        "rule": "Règle",
        "expected_cost": "Coût attendu",
        "saved_value": "Valeur sauvée attendue",
        "net": "Gain net attendu",
        "rule_top": "les {n} plus fortes probabilités d'attrition",
        "rule_threshold": "probabilité d'attrition ≥ {p}",
        "rule_budget": "budget de {amount}, meilleur gain net attendu",
        "rule_high": "niveau de risque élevé",
        "filters": "Filtrer la liste",
        "f_band": "Niveau de risque",
        "f_selected": "Sélectionné",
        "f_family": "Famille de la raison principale",
        "f_search": "Identifiant client commençant par",
        "f_size": "Lignes par page",
        "all": "Tous",
        "yes": "Oui",
        "no": "Non",
        "apply": "Appliquer",
        "reset": "Réinitialiser",
        "download": "Télécharger ces {n} lignes (CSV)",
        "matches": "{n} clients correspondent",
        "table_caption": "Clients de la campagne, {n} correspondants, triés par {column} ({direction})",
        "ascending": "croissant",
        "descending": "décroissant",
        "sort_by": "Trier par {column}",
        "col_rank": "Rang",
        "col_customer_id": "Client",
        "col_churn_probability": "Probabilité",
        "col_risk_band": "Niveau",
        "col_customer_value": "Valeur",
        "col_value_at_risk": "Valeur à risque",
        "col_selected": "Sélectionné",
        "col_top_reason": "Raison principale",
        "col_action": "Action suggérée",
        "no_rows": "Aucun client ne correspond à ces filtres.",
        "pages": "Pages",
        "previous": "Précédente",
        "next": "Suivante",
        "page_of": "Page {page} sur {pages}",
        "back": "Retour à la liste",
        "not_found": "Introuvable",
        "no_customer": "Le client {id} n'est pas dans la campagne {campaign}.",
        "no_data": f"Les données du client ne sont pas disponibles{_}: {{why}}",
        "other_model": f"Cette fiche est calculée avec le modèle {{served}}{__}; la campagne a été évaluée avec "
        f"{{scored}}.",
        "error": "Une erreur est survenue",
    },
}


@dataclass(frozen=True)
class Messages:
    """The texts of one language: ``t("key", **fields)``.

    A text with plural forms takes its count as ``n`` and picks the form by the language's
    CLDR plural rule (French: 0 and 1 are singular); ``shown`` is how the count is written
    (default ``str(n)``).

    Raises
    ------
    KeyError
        For a key the catalog does not have (both languages have the same keys: tested).
    """

    lang: str = "en"

    def __call__(self, key: str, **fields: Any) -> str:
        text = MESSAGES[self.lang][key]
        if isinstance(text, dict):
            n = fields["n"]
            text = text[plural_category(n, self.lang)]
            fields = {**fields, "n": fields.pop("shown", n)}
        return text.format(**fields) if fields else text


def plural_category(n: float, lang: str) -> str:
    """CLDR plural category of ``n`` in ``lang``, reduced to ``one`` / ``other``."""
    return "one" if babel_locale(lang).plural_form(abs(n)) == "one" else "other"


__all__ = ["MESSAGES", "Messages"]
