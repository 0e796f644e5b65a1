"""Assessment: rolling compliance against each region's rules, alerts, year-end grades and subsidies."""
