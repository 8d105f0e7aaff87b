"""Alert rules: inputs gathered from the database, pure rule evaluation, and the conditions they find."""
