"""The feature catalog: every feature's name, family, unit, wording (en/fr) and risk direction.

Features are declared as data: a few templates (:data:`TEMPLATES`), each expanded over the
configured windows, generate the catalog. The same templates give the reason sentences
the explanations show to marketers, via :func:`render_reason`.

Reason templates
----------------
A reason template is one or more alternatives separated by ``" || "``. The first
alternative whose required fields all have a value is used; the last alternative never
has fields, so a sentence always comes out. Inside an alternative, a part in square
brackets is optional: it is dropped when one of its fields has no value. Fields are
``{value}`` (the feature's own value), ``{ref}`` (a typical value, e.g. the training
median, passed by the caller) or the name of another feature of the same row (e.g.
``{purchase_gap_mean_days}``). Values are formatted with their feature's unit, in the
sentence's language (days carry their unit word: "142 days", « 142 jours »).

For ``flag`` features the alternatives are, in order: the sentence when the flag is set,
when it is not set, and when it is unknown.

Amounts carry no currency symbol: they are formatted numbers in the data's own currency.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

import pandas as pd

from churnlens.config import FeatureConfig

#: Bump when feature names or definitions change; models record it and serving checks it.
CATALOG_VERSION = "features-v2"

FAMILIES: tuple[str, ...] = ("purchases", "btyd", "program", "support", "profile")
UNITS: tuple[str, ...] = (
    "days",
    "count",
    "amount",
    "share",
    "ratio",
    "points",
    "minutes",
    "score",
    "flag",
    "category",
    "rank",
    "number",
)
RISK_DIRECTIONS: tuple[str, ...] = ("higher", "lower", "category")
LANGS: tuple[str, ...] = ("en", "fr")

NAN = float("nan")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of the catalog.

    Parameters
    ----------
    name : str
        Column name in snapshots (``purchase_count_90d``).
    family : {"purchases", "btyd", "program", "support", "profile"}
    unit : str
        One of :data:`UNITS`; fixes how values are formatted in sentences.
    description_en, description_fr : str
        What the feature measures.
    reason_en, reason_fr : str
        Reason templates (see the module docstring).
    risk_direction : {"higher", "lower", "category"}
        What raises churn risk: higher values, lower values, or particular categories.
    fill_value : float
        Value for an active customer with no events in the family's table (0 for counts
        and sums, NaN where the feature is undefined).
    """

    name: str
    family: str
    unit: str
    description_en: str
    description_fr: str
    reason_en: str
    reason_fr: str
    risk_direction: str
    fill_value: float = NAN

    def description(self, lang: str = "en") -> str:
        """Description in ``lang``."""
        return self.description_fr if _check_lang(lang) == "fr" else self.description_en

    def reason_template(self, lang: str = "en") -> str:
        """Reason template in ``lang``."""
        return self.reason_fr if _check_lang(lang) == "fr" else self.reason_en


@dataclass(frozen=True)
class _Template:
    """A feature template; ``params`` says how it expands.

    ``""`` once; ``"w"`` once per window ({w}); ``"wl"`` for the longest window only;
    ``"trend"`` for the two longest windows ({s} short, {l} long); ``"d"`` with the
    downgrade window ({d}).
    """

    name: str
    family: str
    unit: str
    risk: str
    desc_en: str
    desc_fr: str
    reason_en: str
    reason_fr: str
    params: str = ""
    fill: float = NAN


_T = _Template

#: The catalog, declared as data, in snapshot column order.
TEMPLATES: tuple[_Template, ...] = (
    # ---------------------------------------------------------------- purchases
    _T(
        "days_since_last_purchase",
        "purchases",
        "days",
        "higher",
        "Days since the customer's last purchase",
        "Jours depuis le dernier achat du client",
        "No purchase for {value}[ — usually every {purchase_gap_mean_days}] || No recent purchase",
        "Aucun achat depuis {value}[ — d'habitude tous les {purchase_gap_mean_days}] || Aucun achat récent",
    ),
    _T(
        "days_since_first_purchase",
        "purchases",
        "days",
        "lower",
        "Days since the customer's first purchase",
        "Jours depuis le premier achat du client",
        "First purchase only {value} ago || Date of first purchase unknown",
        "Premier achat il y a seulement {value} || Date du premier achat inconnue",
    ),
    _T(
        "purchase_count_{w}d",
        "purchases",
        "count",
        "lower",
        "Number of purchases in the last {w} days",
        "Nombre d'achats sur les {w} derniers jours",
        "Purchases in the last {w} days: {value} || Few purchases in the last {w} days",
        "Achats sur les {w} derniers jours : {value} || Peu d'achats sur les {w} derniers jours",
        params="w",
        fill=0.0,
    ),
    _T(
        "spend_{w}d",
        "purchases",
        "amount",
        "lower",
        "Amount spent in the last {w} days, net of refunds",
        "Montant dépensé sur les {w} derniers jours, remboursements déduits",
        "Spent {value} in the last {w} days || Low spending in the last {w} days",
        "A dépensé {value} sur les {w} derniers jours || Faibles dépenses sur les {w} derniers jours",
        params="w",
        fill=0.0,
    ),
    _T(
        "avg_basket_{w}d",
        "purchases",
        "amount",
        "lower",
        "Average purchase amount in the last {w} days (refunds excluded)",
        "Montant moyen d'un achat sur les {w} derniers jours (hors remboursements)",
        "Average basket in the last {w} days: {value} || No purchase in the last {w} days",
        "Panier moyen sur les {w} derniers jours : {value} || Aucun achat sur les {w} derniers jours",
        params="w",
    ),
    _T(
        "refund_share_{w}d",
        "purchases",
        "share",
        "higher",
        "Refunded amount as a share of the amount bought in the last {w} days",
        "Part du montant acheté sur les {w} derniers jours qui a été remboursée",
        "{value} of purchases refunded in the last {w} days || Refunds in the last {w} days",
        "{value} des achats remboursés sur les {w} derniers jours"
        " || Remboursements sur les {w} derniers jours",
        params="w",
    ),
    _T(
        "purchase_count_lifetime",
        "purchases",
        "count",
        "lower",
        "Number of purchases since the first one",
        "Nombre d'achats depuis le premier",
        "Purchases in total: {value} || Few purchases in total",
        "Achats au total : {value} || Peu d'achats au total",
        fill=0.0,
    ),
    _T(
        "spend_lifetime",
        "purchases",
        "amount",
        "lower",
        "Amount spent since the first purchase, net of refunds",
        "Montant dépensé depuis le premier achat, remboursements déduits",
        "Spent {value} in total || Low total spending",
        "A dépensé {value} au total || Faibles dépenses au total",
        fill=0.0,
    ),
    _T(
        "purchase_gap_mean_days",
        "purchases",
        "days",
        "higher",
        "Average number of days between two purchases",
        "Nombre moyen de jours entre deux achats",
        "Buys every {value} on average || Too few purchases to know the usual rhythm",
        "Achète tous les {value} en moyenne || Trop peu d'achats pour connaître le rythme habituel",
    ),
    _T(
        "purchase_gap_std_days",
        "purchases",
        "days",
        "higher",
        "Spread (standard deviation) of the days between two purchases",
        "Dispersion (écart type) du nombre de jours entre deux achats",
        "Irregular purchase rhythm: gaps vary by {value} || Too few purchases to tell how regular they are",
        "Rythme d'achat irrégulier : les écarts varient de {value} "
        "|| Trop peu d'achats pour savoir s'ils sont réguliers",
    ),
    _T(
        "overdue_ratio",
        "purchases",
        "ratio",
        "higher",
        "Days since the last purchase divided by the usual gap between purchases "
        "(the active window for one-purchase customers)",
        "Jours depuis le dernier achat divisés par l'écart habituel entre deux achats "
        "(la fenêtre d'activité pour les clients à un seul achat)",
        "Next purchase overdue: {value}× the usual gap[ (no purchase for {days_since_last_purchase})]"
        " || Next purchase overdue",
        "Prochain achat en retard : {value}× l'écart habituel[ (aucun"
        " achat depuis {days_since_last_purchase})]"
        " || Prochain achat en retard",
    ),
    _T(
        "current_gap_vs_longest",
        "purchases",
        "ratio",
        "higher",
        "Days since the last purchase divided by the longest gap between two of the customer's past "
        "purchase days",
        "Jours depuis le dernier achat divisés par le plus long écart entre deux jours d'achat passés du client",
        "Waiting {value}× longer than ever before between purchases[ (no purchase for {days_since_last_purchase})]"
        " || Longest wait ever between purchases",
        "Attend {value}× plus longtemps que jamais entre deux achats[ (aucun achat depuis "
        "{days_since_last_purchase})] || Plus longue attente jamais vue entre deux achats",
    ),
    _T(
        "purchase_trend_{s}d_vs_{l}d",
        "purchases",
        "ratio",
        "lower",
        "Purchase rate in the last {s} days divided by the rate over the last {l} days",
        "Rythme d'achat sur les {s} derniers jours divisé par celui des {l} derniers jours",
        "Buying at {value}× the pace of the last {l} days over the last {s} days || Purchase pace changing",
        "Achète à {value}× le rythme des {l} derniers jours sur les {s} derniers jours"
        " || Rythme d'achat en évolution",
        params="trend",
    ),
    _T(
        "spend_trend_{s}d_vs_{l}d",
        "purchases",
        "ratio",
        "lower",
        "Daily spending in the last {s} days divided by daily spending over the last {l} days",
        "Dépense quotidienne sur les {s} derniers jours divisée par celle des {l} derniers jours",
        "Spending at {value}× the pace of the last {l} days over the last {s} days || Spending pace changing",
        "Dépense à {value}× le rythme des {l} derniers jours sur les {s} derniers jours"
        " || Rythme de dépense en évolution",
        params="trend",
    ),
    _T(
        "distinct_categories_{w}d",
        "purchases",
        "count",
        "lower",
        "Number of different product categories bought in the last {w} days",
        "Nombre de catégories de produits différentes achetées sur les {w} derniers jours",
        "Product categories bought in the last {w} days: {value} || Few product categories bought",
        "Catégories de produits achetées sur les {w} derniers jours : {value}"
        " || Peu de catégories de produits achetées",
        params="wl",
        fill=0.0,
    ),
    _T(
        "distinct_channels_{w}d",
        "purchases",
        "count",
        "lower",
        "Number of different sales channels used in the last {w} days",
        "Nombre de canaux de vente différents utilisés sur les {w} derniers jours",
        "Sales channels used in the last {w} days: {value} || Few sales channels used",
        "Canaux de vente utilisés sur les {w} derniers jours : {value} || Peu de canaux de vente utilisés",
        params="wl",
        fill=0.0,
    ),
    # ---------------------------------------------------------------- btyd (buy till you die: BG/NBD)
    _T(
        "btyd_p_alive",
        "btyd",
        "share",
        "lower",
        "Probability that the customer is still active (has not quietly left), from a BG/NBD model of "
        "every customer's purchase days before the cutoff",
        "Probabilité que le client soit toujours actif (ne soit pas parti sans le dire), d'après un "
        "modèle BG/NBD des jours d'achat de tous les clients avant la date de référence",
        "Only {value} chance of still being an active buyer, given how often and how recently they bought"
        " || Likely to have stopped buying, given their purchase history",
        "Seulement {value} de chances d'être encore un acheteur actif, vu la fréquence et la date de ses achats"
        " || A probablement cessé d'acheter, vu son historique d'achats",
    ),
    # ---------------------------------------------------------------- program
    _T(
        "program_enrolled",
        "program",
        "flag",
        "lower",
        "1 when the customer has joined the loyalty program (any program event), else 0",
        "1 si le client a rejoint le programme de fidélité (au moins un événement), sinon 0",
        "Member of the loyalty program || Not a member of the loyalty program"
        " || Loyalty program membership unknown",
        "Membre du programme de fidélité || Pas membre du programme de fidélité"
        " || Adhésion au programme de fidélité inconnue",
        fill=0.0,
    ),
    _T(
        "program_enrolment_age_days",
        "program",
        "days",
        "lower",
        "Days since the customer joined the loyalty program",
        "Jours depuis l'adhésion du client au programme de fidélité",
        "Joined the loyalty program {value} ago || No loyalty program enrolment recorded",
        "A rejoint le programme de fidélité il y a {value}"
        " || Aucune adhésion au programme de fidélité enregistrée",
    ),
    _T(
        "points_balance",
        "program",
        "points",
        "lower",
        "Loyalty points balance (earned minus redeemed)",
        "Solde de points de fidélité (gagnés moins utilisés)",
        "Points balance: {value} || Points balance unknown",
        "Solde de points : {value} || Solde de points inconnu",
        fill=0.0,
    ),
    _T(
        "points_earned_{w}d",
        "program",
        "points",
        "lower",
        "Loyalty points earned in the last {w} days",
        "Points de fidélité gagnés sur les {w} derniers jours",
        "Points earned in the last {w} days: {value} || Few points earned in the last {w} days",
        "Points gagnés sur les {w} derniers jours : {value}"
        " || Peu de points gagnés sur les {w} derniers jours",
        params="w",
        fill=0.0,
    ),
    _T(
        "points_redeemed_{w}d",
        "program",
        "points",
        "lower",
        "Loyalty points redeemed in the last {w} days",
        "Points de fidélité utilisés sur les {w} derniers jours",
        "Points redeemed in the last {w} days: {value} || Few points redeemed in the last {w} days",
        "Points utilisés sur les {w} derniers jours : {value}"
        " || Peu de points utilisés sur les {w} derniers jours",
        params="w",
        fill=0.0,
    ),
    _T(
        "redemption_rate_{w}d",
        "program",
        "share",
        "lower",
        "Points redeemed divided by points earned in the last {w} days",
        "Points utilisés divisés par points gagnés sur les {w} derniers jours",
        "Redeemed {value} of the points earned in the last {w} days || No points earned in the last {w} days",
        "A utilisé {value} des points gagnés sur les {w} derniers jours"
        " || Aucun point gagné sur les {w} derniers jours",
        params="w",
    ),
    _T(
        "days_since_last_program_activity",
        "program",
        "days",
        "higher",
        "Days since the customer's last own action in the loyalty program "
        "(offers received and tier changes excluded)",
        "Jours depuis la dernière action du client dans le programme de fidélité "
        "(hors offres reçues et changements de niveau)",
        "No loyalty program activity for {value} || No loyalty program activity recorded",
        "Aucune activité dans le programme de fidélité depuis {value}"
        " || Aucune activité enregistrée dans le programme de fidélité",
    ),
    _T(
        "logins_{w}d",
        "program",
        "count",
        "lower",
        "Logins to the loyalty program in the last {w} days",
        "Connexions au programme de fidélité sur les {w} derniers jours",
        "Program logins in the last {w} days: {value} || Few program logins in the last {w} days",
        "Connexions au programme sur les {w} derniers jours : {value}"
        " || Peu de connexions au programme sur les {w} derniers jours",
        params="w",
        fill=0.0,
    ),
    _T(
        "offers_received_{w}d",
        "program",
        "count",
        "lower",
        "Offers sent to the customer in the last {w} days",
        "Offres envoyées au client sur les {w} derniers jours",
        "Offers received in the last {w} days: {value} || Few offers received in the last {w} days",
        "Offres reçues sur les {w} derniers jours : {value}"
        " || Peu d'offres reçues sur les {w} derniers jours",
        params="w",
        fill=0.0,
    ),
    _T(
        "offers_viewed_{w}d",
        "program",
        "count",
        "lower",
        "Offers viewed by the customer in the last {w} days",
        "Offres consultées par le client sur les {w} derniers jours",
        "Offers viewed in the last {w} days: {value} || Few offers viewed in the last {w} days",
        "Offres consultées sur les {w} derniers jours : {value}"
        " || Peu d'offres consultées sur les {w} derniers jours",
        params="w",
        fill=0.0,
    ),
    _T(
        "offers_completed_{w}d",
        "program",
        "count",
        "lower",
        "Offers used by the customer in the last {w} days",
        "Offres utilisées par le client sur les {w} derniers jours",
        "Offers used in the last {w} days: {value} || Few offers used in the last {w} days",
        "Offres utilisées sur les {w} derniers jours : {value}"
        " || Peu d'offres utilisées sur les {w} derniers jours",
        params="w",
        fill=0.0,
    ),
    _T(
        "offer_completion_rate_{w}d",
        "program",
        "share",
        "lower",
        "Offers used divided by offers received in the last {w} days",
        "Offres utilisées divisées par offres reçues sur les {w} derniers jours",
        "Used {value} of the offers received in the last {w} days || No offer received in the last {w} days",
        "A utilisé {value} des offres reçues sur les {w} derniers jours"
        " || Aucune offre reçue sur les {w} derniers jours",
        params="w",
    ),
    _T(
        "program_other_events_{w}d",
        "program",
        "count",
        "lower",
        "Loyalty program events of other (unlisted) types in the last {w} days",
        "Événements du programme de fidélité d'autres types sur les {w} derniers jours",
        "Other loyalty program events in the last {w} days: {value} || Few other loyalty program events",
        "Autres événements du programme sur les {w} derniers jours : {value}"
        " || Peu d'autres événements du programme",
        params="wl",
        fill=0.0,
    ),
    _T(
        "tier",
        "program",
        "category",
        "category",
        "Current loyalty tier (latest tier seen before the cutoff)",
        "Niveau de fidélité actuel (dernier niveau connu avant la date de référence)",
        "Loyalty tier: {value} || Loyalty tier unknown",
        "Niveau de fidélité : {value} || Niveau de fidélité inconnu",
    ),
    _T(
        "tier_rank",
        "program",
        "rank",
        "lower",
        "Current loyalty tier as a rank (0 = basic, 1 = silver, 2 = gold, 3 = platinum)",
        "Niveau de fidélité actuel en rang (0 = basic, 1 = silver, 2 = gold, 3 = platinum)",
        "Loyalty tier: {tier} || Loyalty tier unknown",
        "Niveau de fidélité : {tier} || Niveau de fidélité inconnu",
    ),
    _T(
        "tier_downgraded_{d}d",
        "program",
        "flag",
        "higher",
        "1 when the customer's tier is lower than it was {d} days ago, else 0",
        "1 si le niveau du client est plus bas qu'il y a {d} jours, sinon 0",
        "Moved down a loyalty tier in the last {d} days || No loyalty tier downgrade in the last {d} days"
        " || Loyalty tier changes unknown",
        "Rétrogradé d'un niveau de fidélité au cours des {d} derniers jours"
        " || Aucune rétrogradation de niveau au cours des {d} derniers jours"
        " || Changements de niveau de fidélité inconnus",
        params="d",
        fill=0.0,
    ),
    # ---------------------------------------------------------------- support
    _T(
        "support_contacts_{w}d",
        "support",
        "count",
        "higher",
        "Contacts with customer support in the last {w} days",
        "Contacts avec le service client sur les {w} derniers jours",
        "Support contacts in the last {w} days: {value} || Contacted support in the last {w} days",
        "Contacts avec le service client sur les {w} derniers jours : {value}"
        " || A contacté le service client sur les {w} derniers jours",
        params="w",
        fill=0.0,
    ),
    _T(
        "support_complaints_{w}d",
        "support",
        "count",
        "higher",
        "Complaints made to customer support in the last {w} days",
        "Réclamations faites au service client sur les {w} derniers jours",
        "Complaints in the last {w} days: {value} || Complaints in the last {w} days",
        "Réclamations sur les {w} derniers jours : {value} || Réclamations sur les {w} derniers jours",
        params="w",
        fill=0.0,
    ),
    _T(
        "support_open_issues",
        "support",
        "count",
        "higher",
        "Support contacts not resolved (yet)",
        "Contacts avec le service client non résolus",
        "Unresolved support issues: {value} || Unresolved support issues",
        "Demandes au service client non résolues : {value} || Demandes au service client non résolues",
        fill=0.0,
    ),
    _T(
        "support_fcr_rate",
        "support",
        "share",
        "lower",
        "Share of support contacts resolved at the first contact",
        "Part des contacts avec le service client résolus dès le premier contact",
        "Resolved at first contact: {value} of support contacts || First-contact resolution unknown",
        "Résolu dès le premier contact : {value} des contacts || Résolution au premier contact inconnue",
    ),
    _T(
        "support_handle_minutes_mean",
        "support",
        "minutes",
        "higher",
        "Average handling time of the customer's support contacts",
        "Durée moyenne de traitement des contacts du client avec le service client",
        "Average support handling time: {value} || Support handling time unknown",
        "Durée moyenne de traitement au service client : {value} || Durée de traitement inconnue",
    ),
    _T(
        "csat_last",
        "support",
        "score",
        "lower",
        "Latest customer satisfaction score (CSAT, 1–5)",
        "Dernière note de satisfaction client (CSAT, 1–5)",
        "Last satisfaction score (CSAT): {value}/5[ — typical customer: {ref}/5]"
        " || No satisfaction score recorded",
        "Dernière note de satisfaction (CSAT) : {value}/5[ — client type : {ref}/5]"
        " || Aucune note de satisfaction enregistrée",
    ),
    _T(
        "csat_mean",
        "support",
        "score",
        "lower",
        "Average customer satisfaction score (CSAT, 1–5)",
        "Note de satisfaction client moyenne (CSAT, 1–5)",
        "Average satisfaction score (CSAT): {value}/5[ — typical customer: {ref}/5]"
        " || No satisfaction score recorded",
        "Note de satisfaction moyenne (CSAT) : {value}/5[ — client type : {ref}/5]"
        " || Aucune note de satisfaction enregistrée",
    ),
    _T(
        "nps_last",
        "support",
        "score",
        "lower",
        "Latest answer to 'would you recommend us?' (NPS, 0–10)",
        "Dernière réponse à « nous recommanderiez-vous ? » (NPS, 0–10)",
        "Last likelihood to recommend (NPS): {value}/10[ — typical customer: {ref}/10]"
        " || No NPS answer recorded",
        "Dernière probabilité de recommandation (NPS) : {value}/10[ — client type : {ref}/10]"
        " || Aucune réponse NPS enregistrée",
    ),
    _T(
        "nps_category",
        "support",
        "category",
        "category",
        "Category of the latest NPS answer (detractor 0–6, passive 7–8, promoter 9–10)",
        "Catégorie de la dernière réponse NPS (détracteur 0–6, passif 7–8, promoteur 9–10)",
        "Last NPS answer: {value} || No NPS answer recorded",
        "Dernière réponse NPS : {value} || Aucune réponse NPS enregistrée",
    ),
    _T(
        "ces_mean",
        "support",
        "score",
        "higher",
        "Average customer effort score (CES, 1 = very easy to 7 = very hard)",
        "Score d'effort client moyen (CES, 1 = très facile à 7 = très difficile)",
        "Average effort score (CES): {value}/7[ — typical customer: {ref}/7] || No effort score recorded",
        "Score d'effort moyen (CES) : {value}/7[ — client type : {ref}/7] || Aucun score d'effort enregistré",
    ),
    _T(
        "days_since_last_contact",
        "support",
        "days",
        "lower",
        "Days since the customer's last contact with support",
        "Jours depuis le dernier contact du client avec le service client",
        "Last contacted support {value} ago || No support contact recorded",
        "Dernier contact avec le service client il y a {value} || Aucun contact avec le service client",
    ),
    # ---------------------------------------------------------------- profile
    _T(
        "tenure_days",
        "profile",
        "days",
        "lower",
        "Days since the customer signed up (or first bought, when the sign-up date is unknown)",
        "Jours depuis l'inscription du client (ou son premier achat si la date d'inscription est inconnue)",
        "Customer for {value} || Customer tenure unknown",
        "Client depuis {value} || Ancienneté du client inconnue",
    ),
)

_PARAM_FIELDS = {"w": ("w",), "wl": ("w",), "trend": ("s", "l"), "d": ("d",), "": ()}

#: Category values shown in sentences, translated (values not listed are shown as they are).
CATEGORY_WORDS: dict[str, dict[str, str]] = {
    "fr": {"detractor": "détracteur", "passive": "passif", "promoter": "promoteur"},
    "en": {},
}


def _check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"language must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


def _param_sets(params: str, config: FeatureConfig) -> list[dict[str, int]]:
    windows = config.windows
    if params == "":
        return [{}]
    if params == "w":
        return [{"w": w} for w in windows]
    if params == "wl":
        return [{"w": windows[-1]}]
    if params == "trend":
        return [{"s": windows[-2], "l": windows[-1]}] if len(windows) >= 2 else []
    if params == "d":
        return [{"d": config.downgrade_window_days}]
    raise AssertionError(params)  # pragma: no cover - templates are fixed


def _fill(text: str, values: Mapping[str, int]) -> str:
    for key, val in values.items():
        text = text.replace("{" + key + "}", str(val))
    return text


def _expand(template: _Template, values: Mapping[str, int]) -> FeatureSpec:
    return FeatureSpec(
        name=_fill(template.name, values),
        family=template.family,
        unit=template.unit,
        description_en=_fill(template.desc_en, values),
        description_fr=_fill(template.desc_fr, values),
        reason_en=_fill(template.reason_en, values),
        reason_fr=_fill(template.reason_fr, values),
        risk_direction=template.risk,
        fill_value=template.fill,
    )


def attribute_spec(column: str, *, categorical: bool = True) -> FeatureSpec:
    """Generic catalog entry for a static customer attribute (``attr_<column>``).

    Parameters
    ----------
    column : str
        Column of the ``customers`` table.
    categorical : bool
        True for text attributes (pandas categoricals), False for numeric ones.

    Returns
    -------
    FeatureSpec
    """
    label = column.replace("{", "(").replace("}", ")").replace("[", "(").replace("]", ")").replace("|", "/")
    return FeatureSpec(
        name=f"attr_{column}",
        family="profile",
        unit="category" if categorical else "number",
        description_en=f"Customer attribute '{label}' (from the customers table)",
        description_fr=f"Attribut client « {label} » (de la table des clients)",
        reason_en=f"{label}: {{value}} || {label} unknown",
        reason_fr=f"{label} : {{value}} || {label} inconnu",
        risk_direction="category" if categorical else "higher",
    )


def feature_catalog(
    config: FeatureConfig = FeatureConfig(),
    extra_categoricals: Sequence[str] = (),
    extra_numerics: Sequence[str] = (),
) -> dict[str, FeatureSpec]:
    """All features for a configuration, by name, in snapshot column order.

    Parameters
    ----------
    config : FeatureConfig
        Windows and downgrade window the templates are expanded with.
    extra_categoricals : sequence of str
        Text columns of the ``customers`` table; each gets an ``attr_<col>`` entry
        (family "profile", unit "category").
    extra_numerics : sequence of str
        Numeric columns of the ``customers`` table (``attr_<col>``, unit "number").

    Returns
    -------
    dict of str to FeatureSpec
    """
    specs: dict[str, FeatureSpec] = {}
    for template in TEMPLATES:
        for values in _param_sets(template.params, config):
            spec = _expand(template, values)
            specs[spec.name] = spec
    for col in extra_categoricals:
        spec = attribute_spec(col, categorical=True)
        specs[spec.name] = spec
    for col in extra_numerics:
        spec = attribute_spec(col, categorical=False)
        specs[spec.name] = spec
    return specs


def catalog_frame(
    config: FeatureConfig = FeatureConfig(), lang: str = "en", extra_categoricals: Sequence[str] = ()
) -> pd.DataFrame:
    """The catalog as a table for display: name, family, unit, risk direction, description.

    Parameters
    ----------
    config : FeatureConfig
    lang : {"en", "fr"}
    extra_categoricals : sequence of str
        Static attribute columns to list too.

    Returns
    -------
    DataFrame
        One row per feature, in catalog order.
    """
    _check_lang(lang)
    specs = feature_catalog(config, extra_categoricals)
    rows = [
        {
            "name": s.name,
            "family": s.family,
            "unit": s.unit,
            "risk_direction": s.risk_direction,
            "description": s.description(lang),
        }
        for s in specs.values()
    ]
    return pd.DataFrame(rows, columns=["name", "family", "unit", "risk_direction", "description"])


# --------------------------------------------------------------------------- lookup


@lru_cache(maxsize=1)
def _template_patterns() -> tuple[tuple[re.Pattern[str], _Template], ...]:
    out = []
    for template in TEMPLATES:
        pattern = re.escape(template.name)
        for key in _PARAM_FIELDS[template.params]:
            pattern = pattern.replace(re.escape("{" + key + "}"), f"(?P<{key}>[0-9]+)")
        out.append((re.compile(f"^{pattern}$"), template))
    return tuple(out)


def spec_for(name: str) -> FeatureSpec:
    """The catalog entry of a feature name, whatever windows it was built with.

    ``purchase_count_60d`` resolves even though 60 is not a default window;
    ``attr_<col>`` gives the generic attribute entry.

    Raises
    ------
    KeyError
        When no template produces this name.
    """
    for pattern, template in _template_patterns():
        match = pattern.match(name)
        if match:
            return _expand(template, {k: int(v) for k, v in match.groupdict().items()})
    if name.startswith("attr_") and len(name) > 5:
        return attribute_spec(name[5:])
    raise KeyError(f"feature {name!r} is not in the feature catalog ({CATALOG_VERSION})")


# --------------------------------------------------------------------------- reasons

_FIELD = re.compile(r"\{([A-Za-z0-9_]+)\}")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | int) and not isinstance(value, bool):
        return not math.isfinite(value)
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _group(digits: str, sep: str) -> str:
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return sep.join(parts)


def format_number(value: float, decimals: int, lang: str = "en") -> str:
    """A number with thousands separators, ``decimals`` places (half up), trailing zeros dropped.

    English ``1,234.5``; French ``1 234,5``.
    """
    exact = Decimal(repr(abs(float(value))))
    text = f"{exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP):f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    thousands, point = (" ", ",") if lang == "fr" else (",", ".")
    out = _group(whole, thousands) + (point + frac if frac else "")
    negative = float(value) < 0 and any(ch not in "0,. " for ch in out)
    return ("-" if negative else "") + out


def format_value(value: Any, unit: str, lang: str = "en") -> str:
    """A feature value as shown in a sentence (unit words included for days and minutes)."""
    _check_lang(lang)
    if unit == "category":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return format_number(value, 2, lang)
        text = str(value)
        return CATEGORY_WORDS.get(lang, {}).get(text, text)
    number = float(value)
    if unit == "days":
        days = int(round(number))
        word = (
            ("jour" if abs(days) <= 1 else "jours") if lang == "fr" else ("day" if abs(days) == 1 else "days")
        )
        return f"{format_number(days, 0, lang)} {word}"
    if unit == "minutes":
        return f"{format_number(number, 0 if abs(number) >= 10 else 1, lang)} min"
    if unit == "share":
        pct = format_number(100.0 * number, 0, lang)
        return f"{pct} %" if lang == "fr" else f"{pct}%"
    if unit in ("ratio", "score"):
        return format_number(number, 1, lang)
    if unit == "amount":
        return format_number(number, 0 if abs(number) >= 100 else 2, lang)
    if unit in ("count", "points", "rank", "flag"):
        return format_number(number, 0, lang)
    return format_number(number, 2, lang)


def _field_text(
    field: str, spec: FeatureSpec, row: Mapping[str, Any], reference: Mapping[str, float] | None, lang: str
) -> str | None:
    if field == "value":
        value, unit = row.get(spec.name), spec.unit
    elif field == "ref":
        value, unit = (reference or {}).get(spec.name), spec.unit
    else:
        value = row.get(field)
        try:
            unit = spec_for(field).unit
        except KeyError:
            unit = "number"
    if _missing(value):
        return None
    try:
        return format_value(value, unit, lang)
    except (TypeError, ValueError, ArithmeticError):
        return None


def _fill_alternative(text: str, fields: Mapping[str, str | None]) -> str | None:
    """Fill one alternative; None if a required field is missing."""

    def optional(match: re.Match[str]) -> str:
        part = match.group(1)
        names = _FIELD.findall(part)
        if any(fields.get(n) is None for n in names):
            return ""
        return _FIELD.sub(lambda m: fields[m.group(1)] or "", part)

    text = _OPTIONAL.sub(optional, text)
    if any(fields.get(n) is None for n in _FIELD.findall(text)):
        return None
    return _FIELD.sub(lambda m: fields[m.group(1)] or "", text)


def render_reason(
    name: str,
    row: Mapping[str, Any],
    lang: str = "en",
    reference: Mapping[str, float] | None = None,
) -> str:
    """A plain sentence explaining one feature of one customer.

    Parameters
    ----------
    name : str
        Feature name (any window: resolved with :func:`spec_for`).
    row : mapping
        The customer's snapshot row (feature name -> value); templates may use other
        features of the same row. Missing or NaN values never raise: the sentence falls
        back to a version without the number.
    lang : {"en", "fr"}
    reference : mapping, optional
        Typical values by feature name (e.g. training medians); when given, the sentence
        adds "— typical customer: …" unless it already carries other context.

    Returns
    -------
    str

    Examples
    --------
    >>> render_reason("days_since_last_purchase",
    ...               {"days_since_last_purchase": 142, "purchase_gap_mean_days": 31})
    'No purchase for 142 days — usually every 31 days'
    """
    _check_lang(lang)
    spec = spec_for(name)
    template = spec.reason_template(lang)
    alternatives = [a.strip() for a in template.split("||")]
    if spec.unit == "flag":
        value = row.get(name)
        if _missing(value):
            return alternatives[2]
        try:
            return alternatives[0] if float(value) >= 0.5 else alternatives[1]
        except (TypeError, ValueError):
            return alternatives[2]
    names = set(_FIELD.findall(template))
    fields = {n: _field_text(n, spec, row, reference, lang) for n in names | {"value", "ref"}}
    for alternative in alternatives:
        sentence = _fill_alternative(alternative, fields)
        if sentence is None:
            continue
        uses_context = bool(set(_FIELD.findall(alternative)) - {"value"})
        context_used = uses_context and sentence != _fill_alternative(_OPTIONAL.sub("", alternative), fields)
        if (
            "{value}" in alternative
            and not context_used
            and "{ref}" not in alternative
            and fields["ref"] is not None
            and fields["ref"] != fields["value"]  # "1 — typical customer: 1" says nothing
            and spec.unit != "category"
        ):
            typical = "client type :" if lang == "fr" else "typical customer:"
            sentence += f" — {typical} {fields['ref']}"
        return sentence
    return alternatives[-1]  # pragma: no cover - the last alternative has no fields
