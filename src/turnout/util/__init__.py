"""Small pure helpers shared by the control and data planes."""
