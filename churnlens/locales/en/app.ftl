## The explanation card's and the web app's words (en). Placeholders are Fluent variables;
## counts ($n) pick their plural form by the language's CLDR rule.

card_title = Churn risk explanation
customer = Customer
probability = Churn probability
band-label = Risk band
value = Customer value
var = Value at risk
why = Why this customer may leave
no_reason = No factor raises this customer's risk above the average customer's.
effect_title = Change of churn probability this reason explains, in percentage points
chart = What moves this customer's churn probability
chart_desc = Waterfall from “{ $average }” ({ $start }) to “{ $this }” ({ $end }), one bar per factor: { $steps }.
average = Average customer's risk
this = This customer
others = { $n } other factors
axis = Churn probability; each bar is a change in percentage points
raises = raises the risk (+)
lowers = lowers the risk (−, hatched)
cutoff = Data before { $date }
model = Model { $name }
horizon = Churn within { $days }
trained_through = trained through { $date }
high = high
medium = medium
low = low
action = Suggested action
action_for = For a risk driven by { $family }
note = The factors are the customer's data that move the model's churn probability most, measured from the average customer's risk; each one is given in percentage points of churn probability. A factor is an association the model learned, not a proven cause.
family_purchases = purchases
family_program = the loyalty programme
family_support = customer service
family_btyd = purchase pattern
family_contacts = past retention campaigns
family_profile = the customer's profile
family_label_purchases = Purchases
family_label_program = Programme
family_label_support = Customer service
family_label_btyd = Purchase pattern
family_label_contacts = Past campaigns
family_label_profile = Profile
timeline = The last 12 months
timeline_desc = Activity in the 12 months before { $date }: { $purchases } ({ $returns }), { $program }, { $support } ({ $complaints }, { $unresolved }).
n_purchases = { $n ->
        [one] { $n } purchase
       *[other] { $n } purchases
    }
n_returns = { $n ->
        [one] { $n } return
       *[other] { $n } returns
    }
n_program = { $n ->
        [one] { $n } programme event
       *[other] { $n } programme events
    }
n_support = { $n ->
        [one] { $n } customer-service contact
       *[other] { $n } customer-service contacts
    }
n_complaints = { $n ->
        [one] { $n } complaint
       *[other] { $n } complaints
    }
n_unresolved = { $n ->
        [one] { $n } unresolved
       *[other] { $n } unresolved
    }
lane_purchases = Purchases
lane_program = Programme
lane_support = Service
ev_purchase = purchase
ev_return = return
ev_points = points
ev_login = login
ev_offer = offer
ev_tier = tier change
ev_enrolled = enrolment
ev_other = other event
ev_contact = contact
ev_complaint = complaint
ev_unresolved = unresolved
ev_times = { $n } times
no_timeline = No event in the 12 months before the cutoff.
app = churnlens
skip = Skip to content
language = Language
switch_to = Français
switch_lang = fr
switch_title = Afficher en français
logout = Log out
login_title = Sign in
login_intro = This churnlens server is protected. Enter its access token.
token = Access token
sign_in = Sign in
bad_token = Wrong token.
bad_form = The form expired. Please try again.
campaign = Campaign
campaigns = Campaigns
open = Open
no_campaign = No campaign found in { $path }. Write one with churnlens score DATA --out FILE.
campaign_title = Campaign { $name }
cutoff_short = Cutoff
model_short = Model
trained_short = Trained through
horizon_short = Horizon
scored = Customers scored
rejected = Not scored
selected_count = Selected for contact
rule = Rule
expected_cost = Expected cost
saved_value = Expected saved value
net = Expected net
rule_top = top { $n } by churn probability
rule_threshold = churn probability ≥ { $p }
rule_budget = budget { $amount }, highest expected net value
rule_high = high risk band
filters = Filter the list
f_band = Risk band
f_selected = Selected
f_family = Top reason's family
f_search = Customer id starts with
f_size = Rows per page
all = All
yes = Yes
no = No
apply = Apply
reset = Reset
download = Download these { $n } rows (CSV)
matches = { $n } customers match
table_caption = Customers of the campaign, { $n } matching, sorted by { $column } ({ $direction })
ascending = ascending
descending = descending
sort_by = Sort by { $column }
col_rank = Rank
col_customer_id = Customer
col_churn_probability = Probability
col_risk_band = Band
col_customer_value = Value
col_value_at_risk = Value at risk
col_selected = Selected
col_top_reason = Top reason
col_action = Suggested action
no_rows = No customer matches these filters.
pages = Pages
previous = Previous
next = Next
page_of = Page { $page } of { $pages }
back = Back to the list
not_found = Not found
no_customer = Customer { $id } is not in campaign { $campaign }.
no_data = The customer's data is not available: { $why }
other_model = This card is computed with model { $served }; the campaign was scored with { $scored }.
error = Something went wrong
rule_uplift = by uplift: each customer's action of highest expected incremental value
rule_uplift_budget = by uplift within a budget of { $amount }: highest expected incremental value
uplift_list_value = Expected incremental value, this list
risk_list_value = Expected incremental value, risk list at the same budget
list_note = { $customers } customers, cost { $cost }
