"""Agent families (installed as ``stepwise.agents``): think-as-tool, LongMT, generative agents."""
