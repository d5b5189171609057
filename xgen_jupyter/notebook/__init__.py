"""The notebook side: %xgen magics, the ipywidgets panel and the OpenAI client helper."""
