"""Reports for auditors (C4): the audit report and one drill's report, as self-contained HTML."""
