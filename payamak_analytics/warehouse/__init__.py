"""Loading the panel's history into a warehouse with dlt, and reading it back for reports.

`payamak_analytics.dlt_source` builds the source (it needs the `dlt` extra);
`destination.attach_destination` turns a loaded dataset into the tables the reports read.
"""
