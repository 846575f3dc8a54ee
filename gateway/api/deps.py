"""Small dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.service import Gateway


async def get_gateway(request: Request) -> Gateway:
    """The Gateway create_app was given. Async: a sync dependency costs a thread hop."""
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
