## Words of the command line's tables and summaries.
catalog-title = Feature catalog ({ $version })
column-feature = feature
column-family = family
column-concept = concept
column-unit = unit
column-risk = risk when
column-description = description

summary-title = Scored at cutoff { $cutoff } with { $model }
summary-scored = customers scored
summary-bands = { "  " }high (p ≥ { $high }) / medium (p ≥ { $medium }) / low
summary-rejected = customers rejected
summary-selected = selected for contact
summary-cost = expected cost
summary-saved = expected saved value
summary-net = expected net value
summary-value = value per saved customer
summary-explained = explained
summary-explained-value = { $customers } customers × { $reasons } reasons ({ $lang })
summary-hidden = reasons hidden (on the safe side of the median customer)
summary-drift = drift (PSI > { $threshold })
summary-no-drift = none
summary-wrote = wrote { $name }
summary-actions = actions
summary-plan = contact plan { $campaign } (send { $date })

## churnlens explain
explain-title = Customer { $customer } at { $cutoff } — churn probability { $probability }, { $band } risk
explain-rank = #
explain-reason = reason
explain-effect = effect on churn probability
explain-no-reason = no factor raises this customer's risk above the typical customer
explain-value = Customer value { $value }, value at risk { $at_risk }
explain-card = Wrote explanation card { $path }
