"""Run-time roles: role definitions and agents' roles, one hash each, shared by every daemon and read
at each look-up (an agent's role is asked for once per request, so nothing is cached to go stale)."""

from __future__ import annotations

from asterisk_cb.store.base import StorePart


class RoleOverrides(StorePart):
    """Read, set and reset run-time role definitions and agent roles (the service checks the values)."""

    async def role_overrides(self) -> tuple[dict[str, str], dict[str, str]]:
        """(role -> permissions as written, agent id or "default" -> role), read together."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._keys.roles)
            pipe.hgetall(self._keys.agent_roles)
            roles, agent_roles = await pipe.execute()
        return roles, agent_roles

    async def set_role(self, role: str, permissions: str) -> None:
        await self._redis.hset(self._keys.roles, role, permissions)

    async def reset_role(self, role: str) -> None:
        await self._redis.hdel(self._keys.roles, role)

    async def set_agent_role(self, agent: str, role: str) -> None:
        await self._redis.hset(self._keys.agent_roles, agent, role)

    async def reset_agent_role(self, agent: str) -> None:
        await self._redis.hdel(self._keys.agent_roles, agent)
