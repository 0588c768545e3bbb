"""What calls cost: prices per model with dated changes, and (budgets) what may still be spent."""

from stockade.billing.prices import PROVISIONED, Price, PriceTable

__all__ = ["PROVISIONED", "Price", "PriceTable"]
