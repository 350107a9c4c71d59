"""Request and response bodies of the HTTP API, one package per API version.

They are the API's contract, apart from the service types: a service may change
its dataclasses without changing what ``/v1`` sends and accepts.
"""
