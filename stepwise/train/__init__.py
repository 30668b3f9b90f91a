"""DPO training on the explorer's step-level preference pairs (TRL), and the loop that feeds the trained model back into the agent."""
