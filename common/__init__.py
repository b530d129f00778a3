"""The ground floor: the project's exceptions and the bounds of every number a user gives."""
