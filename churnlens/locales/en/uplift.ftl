## Targeting by uplift (score --target uplift): why an action was chosen, and the side-by-side figures.

# A reason of the expected uplift: a catalog sentence, then the effect it adds.
uplift-reason = { $reason } — { $points } of effect
# Why the customer got this action.
uplift-action-reason = highest expected incremental value: { $value } (uplift { $points })
uplift-target = targeting
uplift-target-value = by uplift: expected incremental value (uplift × value − cost), action by action
uplift-list = expected incremental value, uplift list
uplift-risk-list = expected incremental value, risk list at the same budget
uplift-list-value = { $value } ({ $customers } customers, cost { $cost })
uplift-ratio = uplift list / risk list
uplift-over-budget = customers passed over (budget)
uplift-over-capacity = { $rule }: over capacity, next action or none
uplift-model = uplift model
uplift-target-budget = by uplift within a budget of { $amount }: expected incremental value (uplift × value − cost)
uplift-no-model = action { $action } has no uplift model (train-uplift skipped it or never saw it): never chosen
uplift-note = note
