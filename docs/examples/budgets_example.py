"""Budgets: stop spending at max_budget_usd."""

from __future__ import annotations

import claude_unified as cu


async def main(config: cu.Config) -> list[str]:
    kinds = []
    async with cu.Conversation(config.replace(max_budget_usd=0.01)) as conv:
        for prompt in ["Summarize chapter 1", "Summarize chapter 2", "Summarize chapter 3"]:
            async for event in conv.send(prompt):
                if isinstance(event, cu.Result):
                    kinds.append(event.kind)  # "success", then "budget_exhausted"
        try:
            await conv.ask("One more?")
        except cu.BudgetExceededError as exc:
            kinds.append(f"stopped: {exc.max_budget_usd}")
    return kinds
