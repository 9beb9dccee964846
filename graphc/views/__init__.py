"""What people read: the equations, the pictures, and the notation they share."""
