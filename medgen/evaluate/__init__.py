"""What every task's evaluation shares (``tidy``: the long metrics table)."""
