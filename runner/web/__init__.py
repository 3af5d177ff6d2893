"""`turing web`: the pipeline live in a browser (app: the ASGI app; queries: what each page reads
through the SQL API; svg: the graph and charts, drawn on the server; templates/: the pages)."""
