# Generic words: durations, points, dates relative to today. A number and its unit never wrap.
-nbsp = {"\u00A0"}
points = { $count ->
        [one] { $value }{ -nbsp }pt
       *[other] { $value }{ -nbsp }pts
    }
duration-days = { $count ->
    [one] { $count }{ -nbsp }day
   *[other] { $count }{ -nbsp }days
  }
duration-months = { $count ->
    [one] { $count }{ -nbsp }month
   *[other] { $count }{ -nbsp }months
  }
duration-years = { $count ->
    [one] { $shown }{ -nbsp }year
   *[other] { $shown }{ -nbsp }years
  }
ago = { $days ->
    [0] today
    [1] yesterday
   *[other] { $duration } ago
  }

window = { $unit ->
        [months] { $count ->
            [one] month
           *[other] { $count }{ -nbsp }months
        }
       *[days] { $count ->
            [one] day
           *[other] { $count }{ -nbsp }days
        }
    }
times = { $value }×
points-count = { $count ->
        [one] { $shown }{ -nbsp }point
       *[other] { $shown }{ -nbsp }points
    }
minutes = { $shown }{ -nbsp }min
score = { $shown }/{ $scale }
yes-no = { $flag ->
        [1] yes
       *[0] no
    }

risk-band = { $band ->
        [high] high
        [medium] medium
       *[low] low
    }
family = { $kind ->
        [purchases] purchases
        [btyd] purchase pattern (BG/NBD)
        [program] loyalty program
        [support] customer support
        [contacts] retention campaigns
       *[profile] profile
    }
unit = { $kind ->
        [days] days
        [days_ago] days ago
        [count] count
        [amount] amount
        [share] share
        [ratio] ratio
        [points] points
        [minutes] minutes
        [score] score
        [flag] yes / no
        [category] category
        [rank] rank
       *[number] number
    }
risk-direction = { $kind ->
        [higher] higher
        [lower] lower
       *[category] some values
    }
concept = { $kind ->
        [recency] time since the last purchase
        [seniority] seniority
        [activity] purchase volume
        [basket] basket size
        [returns] returns
        [rhythm] purchase rhythm
        [trend] purchase trend
        [variety] variety of purchases
        [membership] program membership
        [points] loyalty points
        [program_activity] program activity
        [offers] offers
        [tier] loyalty tier
        [support_contacts] support contacts
        [complaints] complaints
        [open_issues] unresolved requests
        [resolution] request handling
        [satisfaction] satisfaction
        [recommendation] recommendation
        [effort] customer effort
        [campaigns] past retention campaigns
       *[other] { $kind }
    }

## Category values shown in sentences (anything else is shown as written, underscores as spaces).
value-basic = Basic
value-silver = Silver
value-gold = Gold
value-platinum = Platinum
value-detractor = detractor
value-passive = passive
value-promoter = promoter
value-service_recovery = service recovery call
value-points_reminder = points reminder
value-win_back = win-back offer

reject = { $code ->
        [cancelled] cancelled before the cutoff
        [no_events] no event in any table (listed in customers only)
        [first_event_after] first event after the cutoff
        [no_purchase_before] no purchase before the cutoff
        [inactive] no purchase in the { $days } days before the cutoff
       *[other] not in the active population at the cutoff
    }
