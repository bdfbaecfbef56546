"""Figure builders and widgets shared by the dashboard pages."""
