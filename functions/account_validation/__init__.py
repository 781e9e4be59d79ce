"""Validate step of the student account workflow (statemachine/account_workflow.asl.json)."""
