

def test_claim_then_complete_writes_the_outbox(turing, conn, jobs):
    turing.register_actor(dict(
        name="scorer", kind="script", script="cat",
        work_query="select id as subject_id, title from public.jobs where status = 'new'",
        on_complete="public.jobs_scored"))
    claimed = turing.claim_batch("cpu", "w1", 3)
    assert [t.subject_id for t in claimed] == ["1", "2", "3"]
    assert turing.complete_ticket(claimed[0].ticket_id, claimed[0].lease_token, {"score": 7})
    assert conn.execute("select status from public.jobs where id = 1").fetchone()[0] == "scored"
