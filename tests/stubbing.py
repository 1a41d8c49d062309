"""Stubbing for the APIs the emulator lacks (botocore's Stubber validates requests and
responses against the real service model)."""

from __future__ import annotations

from botocore.stub import Stubber


class OperationStubber(Stubber):
    """A Stubber that answers only the named operations of a client; the client's other calls
    still reach the emulator (a plain Stubber would intercept every call)."""

    def __init__(self, client, *operations: str) -> None:
        super().__init__(client)
        service = client.meta.service_model.service_id.hyphenize()
        self._handlers = [(f"{event}.{service}.{op}", handler)
                          for op in operations
                          for event, handler in (("before-parameter-build", self._assert_expected_params),
                                                 ("before-call", self._get_response_handler))]

    def activate(self) -> None:
        for event, handler in self._handlers:
            self.client.meta.events.register_first(event, handler)

    def deactivate(self) -> None:
        for event, handler in self._handlers:
            self.client.meta.events.unregister(event, handler)
