-- How far each partition of supervision's topics has been read and applied, by whichever
-- instance holds it: the instant up to which its owner had applied everything the broker
-- held (scheduler.caught_up). An instance fires any due timer, including one of a case on
-- a partition another instance holds, so it also waits for the other partitions' marks:
-- a sign-for in another instance's backlog (after a restart, a rebalance) is read before
-- the deadline it met fires.
CREATE TABLE read_marks (
    topic     text NOT NULL,
    partition integer NOT NULL,
    as_of     timestamptz NOT NULL,
    PRIMARY KEY (topic, partition)
);
