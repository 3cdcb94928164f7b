"""Errors core raises for the surfaces (Slack, web) to turn into a message where the user is."""


class HeraldError(Exception):
    """Base: `message` is safe to show to the person who acted."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(HeraldError):
    """Missing — or in another workspace, which must look exactly the same."""


class PermissionDenied(HeraldError):
    pass


class ValidationError(HeraldError):
    """Bad input. `errors` maps a field name to its message (modal blocks, form fields)."""

    def __init__(self, errors: dict[str, str] | str):
        if isinstance(errors, str):
            errors = {"__all__": errors}
        super().__init__("; ".join(errors.values()))
        self.errors = errors
