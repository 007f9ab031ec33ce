## Words of the command line's tables and summaries.
catalog-title = Feature catalog ({ $version })
column-feature = feature
column-family = family
column-concept = concept
column-unit = unit
column-risk = risk when
column-description = description
