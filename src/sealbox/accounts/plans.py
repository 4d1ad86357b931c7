"""The licence plans Sealbox ships with (the operator may change them afterwards)."""

MB = 1000 * 1000

# name: (largest attachment total per send, retention days, messages per month, seats)
DEFAULT_PLANS = {
    "Eco": (0, 7, 100, 1),
    "Advanced": (100 * MB, 30, 1000, 5),
    "Pro": (2500 * MB, 90, None, 25),
}


def ensure_default_plans(plan_model) -> None:
    """Create the shipped plans that are missing; never overwrite an operator's changes."""
    for name, (max_send, retention, monthly, seats) in DEFAULT_PLANS.items():
        plan_model.objects.get_or_create(
            name=name,
            defaults={
                "max_send_bytes": max_send,
                "max_retention_days": retention,
                "messages_per_month": monthly,
                "default_seats": seats,
            },
        )
