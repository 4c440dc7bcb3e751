"""Agentic evaluation: an LLM agent with one method family's tools states what a finetune did; a grader scores it.

Each evaluation is an Inspect AI task (:func:`lmdiff.agents.task.agent_task`): the dataset is organisms
with a ground truth (:mod:`lmdiff.agents.dataset`), the solver an agent loop over tools that read a run
directory's artifacts by the file names the methods write (:mod:`lmdiff.agents.tools`), with budgets on
LLM calls, tokens and model interactions (:mod:`lmdiff.agents.budget`), and the scorer grades the agent's
ranked guesses against the ground truth (:mod:`lmdiff.agents.scorer`). Repeats are Inspect epochs;
acc@1/5/10 come with intervals over organisms x repeats (:func:`lmdiff.agents.task.summarise_log`).

Interactive discrimination (:mod:`lmdiff.agents.discrimination`) validates a run's hypotheses with an
LLM that guesses which model wrote a hidden answer; its binomial p-values join the run's FDR family.
"""

from lmdiff.agents.budget import AgentBudget
from lmdiff.agents.tools import FAMILIES

__all__ = ["FAMILIES", "AgentBudget"]
