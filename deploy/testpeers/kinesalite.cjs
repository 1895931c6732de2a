// Runs kinesalite (an independent implementation of the Kinesis Data Streams
// API, in memory) on 127.0.0.1 only: its command line binds every
// interface. Stream changes take 10 ms instead of 500, and the shard limit
// is 100. Usage: node kinesalite.cjs PORT
const kinesalite = require('kinesalite')
const port = Number(process.argv[2])
const server = kinesalite({ createStreamMs: 10, deleteStreamMs: 10, updateStreamMs: 10, shardLimit: 100 })
server.listen(port, '127.0.0.1', () => console.log(`kinesalite listening on 127.0.0.1:${port}`))
