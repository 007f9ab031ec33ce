## The feature catalog's words. One message per feature template (the template's key):
##   value        the reason sentence, only when the generic one does not fit
##                (generic: "<label>: <value> (median customer: <ref>)", see reason / reason-median)
##   .label       noun phrase a reason starts with
##   .short       short label for charts
##   .description what the feature measures
## Variables: $value (formatted), $ref (formatted reference, or "none"), $window,
## $short_window, $long_window, $usual (usual gap, or "none"), $sign, $scale, $flag, $attribute.

-median = median customer

reason = { $label }: { $value }
reason-median = { $label }: { $value } ({ -median }: { $ref })

days-since-last-purchase = { $usual ->
        [none] { $ref ->
            [none] Last purchase { $value }
           *[other] Last purchase { $value } ({ -median }: { $ref })
        }
       *[other] Last purchase { $value }, usually one every { $usual }
    }
    .label = Last purchase
    .short = Last purchase
    .description = Days since the customer's last purchase
days-since-first-purchase = { $ref ->
        [none] First purchase { $value }
       *[other] First purchase { $value } ({ -median }: { $ref })
    }
    .label = First purchase
    .short = First purchase
    .description = Days since the customer's first purchase
purchase-count =
    .label = Purchases in the last { $window }
    .short = Purchases ({ $window })
    .description = Number of purchases in the last { $window }
spend = { $sign ->
        [negative] Returns exceeded purchases in the last { $window }: { $value } refunded, net
       *[other] { $ref ->
            [none] Spend in the last { $window }: { $value }
           *[other] Spend in the last { $window }: { $value } ({ -median }: { $ref })
        }
    }
    .label = Spend in the last { $window }
    .short = Spend ({ $window })
    .description = Amount spent in the last { $window }, net of refunds
avg-basket =
    .label = Average basket in the last { $window }
    .short = Average basket ({ $window })
    .description = Average purchase amount in the last { $window } (refunds excluded)
refund-share =
    .label = Share of purchases returned in the last { $window }
    .short = Returns ({ $window })
    .description = Refunded amount as a share of the amount bought in the last { $window }
purchase-count-lifetime =
    .label = Purchases since the first one
    .short = Purchases (all time)
    .description = Number of purchases since the first one
spend-lifetime = { $sign ->
        [negative] Returns exceeded purchases since the first one: { $value } refunded, net
       *[other] { $ref ->
            [none] Total spend: { $value }
           *[other] Total spend: { $value } ({ -median }: { $ref })
        }
    }
    .label = Total spend
    .short = Total spend
    .description = Amount spent since the first purchase, net of refunds
purchase-gap-mean =
    .label = Usual time between purchases
    .short = Time between purchases
    .description = Average number of days between two purchases
purchase-gap-std =
    .label = Variation of the time between purchases
    .short = Irregular purchases
    .description = Spread (standard deviation) of the days between two purchases
overdue-ratio = { $ref ->
        [none] Time since the last purchase: { $value } the usual gap
       *[other] Time since the last purchase: { $value } the usual gap ({ -median }: { $ref })
    }
    .label = Time since the last purchase, against the usual gap
    .short = Next purchase overdue
    .description = Days since the last purchase divided by the usual gap between purchases (the active window for one-purchase customers)
current-gap-vs-longest = { $ref ->
        [none] Current wait since the last purchase: { $value } the longest gap so far
       *[other] Current wait since the last purchase: { $value } the longest gap so far ({ -median }: { $ref })
    }
    .label = Current wait, against the longest gap so far
    .short = Longest wait ever
    .description = Days since the last purchase divided by the longest gap between two of the customer's past purchase days
btyd-p-alive =
    .label = Chance of still being an active buyer
    .short = Still active (BG/NBD)
    .description = Probability that the customer still buys (has not quietly left), from a BG/NBD model of every customer's purchase days before the cutoff
purchase-trend = { $ref ->
        [none] Purchase pace in the last { $short_window }: { $value } that of the last { $long_window }
       *[other] Purchase pace in the last { $short_window }: { $value } that of the last { $long_window } ({ -median }: { $ref })
    }
    .label = Purchase pace in the last { $short_window }, against the last { $long_window }
    .short = Purchase pace ({ $short_window })
    .description = Purchase rate in the last { $short_window } divided by the rate over the last { $long_window }
spend-trend = { $ref ->
        [none] Spending pace in the last { $short_window }: { $value } that of the last { $long_window }
       *[other] Spending pace in the last { $short_window }: { $value } that of the last { $long_window } ({ -median }: { $ref })
    }
    .label = Spending pace in the last { $short_window }, against the last { $long_window }
    .short = Spending pace ({ $short_window })
    .description = Daily spending in the last { $short_window } divided by daily spending over the last { $long_window }
distinct-categories =
    .label = Product categories bought in the last { $window }
    .short = Categories ({ $window })
    .description = Number of different product categories bought in the last { $window }
distinct-channels =
    .label = Sales channels used in the last { $window }
    .short = Channels ({ $window })
    .description = Number of different sales channels used in the last { $window }

program-enrolled = { $flag ->
        [1] Loyalty program member
       *[0] Not a loyalty program member
    }
    .label = Loyalty program membership
    .short = Program member
    .description = 1 when the customer has joined the loyalty program (any program event), else 0
program-enrolment-age = { $ref ->
        [none] Joined the loyalty program { $value }
       *[other] Joined the loyalty program { $value } ({ -median }: { $ref })
    }
    .label = Joined the loyalty program
    .short = Program member since
    .description = Days since the customer joined the loyalty program
points-balance =
    .label = Points balance
    .short = Points balance
    .description = Loyalty points balance (earned minus redeemed)
points-earned =
    .label = Points earned in the last { $window }
    .short = Points earned ({ $window })
    .description = Loyalty points earned in the last { $window }
points-redeemed =
    .label = Points redeemed in the last { $window }
    .short = Points redeemed ({ $window })
    .description = Loyalty points redeemed in the last { $window }
redemption-rate = { $scale ->
        [times] Points redeemed in the last { $window }: { $value } those earned
       *[share] { $ref ->
            [none] Points redeemed in the last { $window }: { $value } of those earned
           *[other] Points redeemed in the last { $window }: { $value } of those earned ({ -median }: { $ref })
        }
    }
    .label = Points redeemed in the last { $window }, against points earned
    .short = Points redeemed / earned ({ $window })
    .description = Points redeemed divided by points earned in the last { $window }
days-since-last-program-activity = { $ref ->
        [none] Last loyalty program activity { $value }
       *[other] Last loyalty program activity { $value } ({ -median }: { $ref })
    }
    .label = Last loyalty program activity
    .short = Last program activity
    .description = Days since the customer's last own action in the loyalty program (offers received and tier changes excluded)
logins =
    .label = Program logins in the last { $window }
    .short = Logins ({ $window })
    .description = Logins to the loyalty program in the last { $window }
offers-received =
    .label = Offers received in the last { $window }
    .short = Offers received ({ $window })
    .description = Offers sent to the customer in the last { $window }
offers-viewed =
    .label = Offers viewed in the last { $window }
    .short = Offers viewed ({ $window })
    .description = Offers viewed by the customer in the last { $window }
offers-completed =
    .label = Offers used in the last { $window }
    .short = Offers used ({ $window })
    .description = Offers used by the customer in the last { $window }
offer-completion-rate = { $ref ->
        [none] Offers used in the last { $window }: { $value } of those received
       *[other] Offers used in the last { $window }: { $value } of those received ({ -median }: { $ref })
    }
    .label = Offers used in the last { $window }, against offers received
    .short = Offers used / received ({ $window })
    .description = Offers used divided by offers received in the last { $window }
program-other-events =
    .label = Other loyalty program events in the last { $window }
    .short = Other program events
    .description = Loyalty program events of other (unlisted) types in the last { $window }
tier =
    .label = Loyalty tier
    .short = Tier
    .description = Current loyalty tier (latest tier seen before the cutoff)
tier-rank =
    .label = Loyalty tier
    .short = Tier
    .description = Current loyalty tier as a rank (0 = basic, 1 = silver, 2 = gold, 3 = platinum)
tier-downgraded = { $flag ->
        [1] Loyalty tier downgrade in the last { $window }
       *[0] No loyalty tier downgrade in the last { $window }
    }
    .label = Loyalty tier downgrade in the last { $window }
    .short = Tier downgrade
    .description = 1 when the customer's tier is lower than it was { $window } ago, else 0

support-contacts =
    .label = Support contacts in the last { $window }
    .short = Support contacts ({ $window })
    .description = Contacts with customer support in the last { $window }
support-complaints =
    .label = Complaints in the last { $window }
    .short = Complaints ({ $window })
    .description = Complaints made to customer support in the last { $window }
support-open-issues =
    .label = Unresolved support requests
    .short = Open requests
    .description = Support contacts not resolved (yet)
support-fcr-rate = { $ref ->
        [none] Support contacts resolved at the first contact: { $value }
       *[other] Support contacts resolved at the first contact: { $value } ({ -median }: { $ref })
    }
    .label = Support contacts resolved at the first contact
    .short = First-contact resolution
    .description = Share of support contacts resolved at the first contact
support-handle-minutes =
    .label = Average support handling time
    .short = Handling time
    .description = Average handling time of the customer's support contacts
csat-last =
    .label = Latest satisfaction score (CSAT)
    .short = Latest CSAT
    .description = Latest customer satisfaction score (CSAT, 1–5)
csat-mean =
    .label = Average satisfaction score (CSAT)
    .short = Average CSAT
    .description = Average customer satisfaction score (CSAT, 1–5)
nps-last =
    .label = Latest likelihood to recommend (NPS)
    .short = Latest NPS
    .description = Latest answer to "would you recommend us?" (NPS, 0–10)
nps-category =
    .label = Latest NPS answer
    .short = NPS category
    .description = Category of the latest NPS answer (detractor 0–6, passive 7–8, promoter 9–10)
ces-mean =
    .label = Average customer effort (CES)
    .short = Effort (CES)
    .description = Average customer effort score (CES, 1 = very easy to 7 = very hard)
days-since-last-contact = { $ref ->
        [none] Last support contact { $value }
       *[other] Last support contact { $value } ({ -median }: { $ref })
    }
    .label = Last support contact
    .short = Last support contact
    .description = Days since the customer's last contact with support

campaign-contacts =
    .label = Retention contacts in the last { $window }
    .short = Retention contacts ({ $window })
    .description = Retention campaign contacts the customer received in the last { $window } (control rows excluded)
campaign-holdouts =
    .label = Times held out of a campaign (control group) in the last { $window }
    .short = Campaign holdouts
    .description = Times the customer was selected by a retention campaign but held out at random (control group) in the last { $window }
campaign-cost =
    .label = Cost of retention contacts in the last { $window }
    .short = Retention cost
    .description = Cost of the retention contacts the customer received in the last { $window }
days-since-last-campaign-contact = { $ref ->
        [none] Last retention contact { $value }
       *[other] Last retention contact { $value } ({ -median }: { $ref })
    }
    .label = Last retention contact
    .short = Last retention contact
    .description = Days since the customer last received a retention campaign contact
last-campaign-action =
    .label = Latest retention action
    .short = Latest retention action
    .description = Action of the latest retention campaign contact the customer received
last-campaign-holdout = { $flag ->
        [1] Held out (control group) of the latest campaign that selected them
       *[0] Contacted by the latest campaign that selected them
    }
    .label = Control group of the latest campaign
    .short = Latest campaign holdout
    .description = 1 when the latest retention campaign that selected the customer held them out (control group), else 0

tenure = { $ref ->
        [none] Customer for { $value }
       *[other] Customer for { $value } ({ -median }: { $ref })
    }
    .label = Customer for
    .short = Tenure
    .description = Days since the customer signed up (or first bought, when the sign-up date is unknown)
attribute =
    .label = { $attribute }
    .short = { $attribute }
    .description = Customer attribute "{ $attribute }" (from the customers table)
