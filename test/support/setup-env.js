// End-to-end specs read their service addresses from the environment that `npm test` prepared.
process.env.GATEHOUSE_TEST = '1';
