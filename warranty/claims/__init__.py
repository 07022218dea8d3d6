"""Claims: rules, workflow, payouts, filing, NPS, attachments, risk signals."""
