-- 0024: each range rule of an actor says itself. register_actor reports a violated check
-- constraint by its comment, so `max_attempts: 0` is refused with the rule and what to write
-- instead, not with the constraint's name and its SQL.
comment on constraint actors_max_attempts_positive on turing.actors is
'max_attempts must be a whole number from 1 to 100 (the attempts before a ticket is dead), '
'e.g. max_attempts: 3';
comment on constraint actors_batch_size_positive on turing.actors is
'batch_size must be a whole number from 1 to 10000 (the tickets one claim takes), '
'e.g. batch_size: 8';
comment on constraint actors_buffer_size_positive on turing.actors is
'buffer_size must be a whole number from 1 to 1000000 (the pending tickets discovery keeps '
'ready), e.g. buffer_size: 200';
comment on constraint actors_lease_positive on turing.actors is
'lease must be a duration above zero, e.g. lease: 2 minutes or lease: 90s';
comment on constraint actors_timeout_floor_positive on turing.actors is
'timeout_floor must be a duration above zero, e.g. timeout_floor: 30s';
comment on constraint actors_name_format on turing.actors is
'name must be lowercase letters, digits and _, starting with a letter (at most 63), '
'e.g. name: scorer';
