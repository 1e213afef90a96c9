import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { heartbeatUpdate } from '../lib/conductor/heartbeats.ts';
import { startDynamoDb } from '../local/dynamodb.ts';
import { ProcessGroup } from '../local/processes.ts';
import { documentClient, instanceItem, putItems, timedPool } from './cloud.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { localCredentials } from '../local/dynamodb.ts';

const procs = new ProcessGroup('/tmp/exp/pids.json');
const endpoint = await startDynamoDb(procs, { port: 18999, dataDir: '/tmp/exp/ddb', logDir: '/tmp/exp' });
const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: localCredentials });
const docs = documentClient(client);
const T = 'inst';
await client.send(new CreateTableCommand({ TableName: T, BillingMode: 'PAY_PER_REQUEST',
  AttributeDefinitions: [{AttributeName:'project_id',AttributeType:'S'},{AttributeName:'id',AttributeType:'S'}],
  KeySchema: [{AttributeName:'project_id',KeyType:'HASH'},{AttributeName:'id',KeyType:'RANGE'}],
  GlobalSecondaryIndexes: [{IndexName:'by-id',KeySchema:[{AttributeName:'id',KeyType:'HASH'}],Projection:{ProjectionType:'KEYS_ONLY'}}],
  StreamSpecification: { StreamEnabled: true, StreamViewType: 'KEYS_ONLY' } })).catch(()=>{});
const items = Array.from({length:500},(_,n)=>instanceItem('p1',n,'wk'));
await putItems(docs, items, T);
let sent = 1;
const upd = (item) => docs.send(new UpdateCommand(heartbeatUpdate({projectId:item.project_id,instanceId:item.id,wrappedKey:'wk'},{method:'heartbeat',instance_id:item.id,sent:sent++,payload:{service_status:'healthy'}},true,T))).catch((e)=>{if(e.name!=='ConditionalCheckFailedException')throw e;});
for (let rep=0; rep<3; rep++) for (const c of (process.argv[2]??'1,2,5,10,20,50').split(',').map(Number)) {
  const N = 1000;
  const r = await timedPool(N, c, (i)=>upd(items[i%500]).then(()=>{}));
  console.log(`conc ${c}: ${(N/r.wallMs*1000).toFixed(0)}/s`);
}
await procs.stopAll?.();
process.exit(0);
