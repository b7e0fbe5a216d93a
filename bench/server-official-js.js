// bench/server-official-js.js: the official JavaScript client (npm getstream, pinned in
// bench/js) driving the local server's users, feeds, follows, enrichment, files, images,
// open graph and personalization; every
// answer is checked with assert. Run through bench/server-official-js, which starts the
// server and sets STREAM_BASE_URL, STREAM_API_KEY and STREAM_API_SECRET.
'use strict';
const assert = require('assert');
const stream = require('getstream');

const key = process.env.STREAM_API_KEY;
const client = stream.connect(key, process.env.STREAM_API_SECRET, '1');
const steps = [];
const step = (name) => steps.push(name);

async function expectError(promise, status, code) {
  try {
    await promise;
  } catch (err) {
    assert.strictEqual(err.response.status, status);
    assert.strictEqual(err.error.code, code);
    return;
  }
  assert.fail(`expected ${status}/${code}`);
}

(async () => {
  await client.user('jsalice').create({ name: 'Alice' });
  await client.user('jsbob').create({});
  const alice = client.feed('user', 'jsalice');

  const a1 = await alice.addActivity({
    actor: client.user('jsalice').ref(), verb: 'post', object: 42, foreign_id: '6621934',
    time: '2016-01-15T17:54:42+05:00', custom: { x: [1, 2] },
  });
  assert.strictEqual(a1.id, '24f9d500-bb87-11e5-8080-80012ce3cc51');
  assert.strictEqual(a1.time, '2016-01-15T12:54:42.000000');
  assert.strictEqual(a1.object, '42');
  assert.strictEqual(a1.origin, null);
  step('add');

  const many = await alice.addActivities([
    { actor: 'SU:jsalice', verb: 'v', object: 'o1' }, { actor: 'SU:jsalice', verb: 'v', object: 'o2' }]);
  assert.deepStrictEqual(many.activities.map((a) => a.object), ['o1', 'o2']);
  step('add many');

  const page = await alice.get({ limit: 2 });
  assert.deepStrictEqual(page.results.map((a) => a.object), ['o2', 'o1']);
  assert.deepStrictEqual(Object.keys(page).sort(), ['duration', 'next', 'results']);
  const page2 = await alice.get({ limit: 2, id_lt: page.results[1].id });
  assert.deepStrictEqual(page2.results.map((a) => a.id), [a1.id]);
  assert.strictEqual(page2.next, '');
  step('read and page');

  const enriched = await alice.get({ limit: 1, enrich: true, withReactionCounts: true });
  // the client's StreamUser.full is the answer without duration
  const user = (await client.user('jsalice').get()).full;
  assert.strictEqual(user.duration, undefined);
  assert.deepStrictEqual(enriched.results[0].actor, user);
  assert.deepStrictEqual(enriched.results[0].reaction_counts, {});
  step('enriched read');

  const tl = client.feed('timeline', 'jsbob');
  await tl.follow('user', 'jsalice', { limit: 1 });
  const copied = (await tl.get()).results;
  assert.deepStrictEqual(copied.map((a) => [a.object, a.origin]), [['o2', 'user:jsalice']]);
  assert.strictEqual((await tl.following({ filter: ['user:jsalice'] })).results.length, 1);
  assert.strictEqual((await alice.followers()).results[0].feed_id, 'timeline:jsbob');
  const stats = await alice.followStats({ followers_slugs: ['timeline'] });
  assert.strictEqual(stats.results.followers.count, 1);
  const counts = (await client.user('jsalice').get({ with_follow_counts: true })).full;
  assert.strictEqual(counts.followers_count, 1);
  assert.strictEqual(counts.following_count, 0);
  const bobCounts = (await client.user('jsbob').get({ with_follow_counts: true })).full;
  assert.strictEqual(bobCounts.following_count, 1);
  step('follow, followers, following, stats, user follow counts');

  const byId = await client.getActivities({ ids: [a1.id] });
  const { duration: d1, ...stored } = a1;
  assert.ok(d1);
  assert.deepStrictEqual(byId.results, [stored]);
  const byFid = await client.getActivities({ foreignIDTimes: [{ foreignID: '6621934', time: a1.time }] });
  assert.deepStrictEqual(byFid.results.map((a) => a.id), [a1.id]);
  const byIdEnriched = await client.getActivities({ ids: [a1.id], enrich: true });
  assert.deepStrictEqual(byIdEnriched.results[0].actor, user);
  step('activities by id and foreign id');

  await tl.unfollow('user', 'jsalice', { keepHistory: true });
  assert.strictEqual((await tl.get()).results.length, 1);
  await alice.removeActivity(many.activities[1].id);
  await alice.removeActivity({ foreignId: '6621934' });
  assert.deepStrictEqual((await alice.get()).results.map((a) => a.object), ['o1']);
  step('unfollow with history, remove by id and foreign id');

  const uc = stream.connect(key, client.createUserToken('jsalice'), '1');
  assert.ok((await uc.feed('user', 'jsalice').addActivity({ actor: 'SU:jsalice', verb: 'v', object: 'o' })).id);
  await expectError(uc.feed('timeline', 'jsbob').get(), 403, 17);
  await expectError(uc.feed('user', 'jsbob').addActivity({ actor: 'SU:jsalice', verb: 'v', object: 'o' }), 403, 17);
  await expectError(uc.feed('user', 'jsalice').addActivity({ actor: 'jsalice', verb: 'v', object: 'o' }), 403, 17);
  await uc.feed('user', 'jsbob').get();
  await uc.feed('timeline', 'jsalice').follow('user', 'jsbob');
  step('user-token policies');

  await client.addToMany({ actor: 'SU:jsbob', verb: 'v', object: 'many' }, ['user:jsm1', 'user:jsm2']);
  const m1 = (await client.feed('user', 'jsm1').get()).results;
  const m2 = (await client.feed('user', 'jsm2').get()).results;
  assert.strictEqual(m1[0].id, m2[0].id);
  await client.followMany([{ source: 'timeline:jsm3', target: 'user:jsm1' }], 0);
  assert.deepStrictEqual((await client.feed('timeline', 'jsm3').get()).results, []);
  assert.strictEqual((await client.feed('user', 'jsm1').followers()).results.length, 1);
  await client.unfollowMany([{ source: 'timeline:jsm3', target: 'user:jsm1' }]);
  assert.deepStrictEqual((await client.feed('user', 'jsm1').followers()).results, []);
  step('add_to_many, follow_many, unfollow_many');

  await expectError(client.feed('flat', 'x').get(), 400, 6);
  await expectError(alice.addActivity({ verb: 'v', object: 'o' }), 400, 4);
  step('errors');

  await client.user('jsalice').delete();
  const gone = await alice.get({ enrich: true });
  assert.deepStrictEqual(gone.results[0].actor,
    { error: 'ReferenceNotFound', reference: 'SU:jsalice', reference_type: 'user', id: 'jsalice' });
  step('deleted user becomes ReferenceNotFound');

  // files and images (section 13): multipart uploads as the official client sends them
  const png = Buffer.from('89504e470d0a1a0a0000000d494844520000001000000010080200000090916836000000'
    + '164944415478da63d0a83841126218d530aa61f86a0000c34a6810077e464c0000000049454e44ae426082', 'hex');
  const img = await client.images.upload(png, 'js.png', 'image/png');
  assert.match(img.file, /\/js\.png\?/);
  const small = await client.images.process(img.file, { resize: 'scale', w: 8, h: 4 });
  const bytes = Buffer.from(await (await fetch(small.file)).arrayBuffer());
  assert.deepStrictEqual([bytes.readUInt32BE(16), bytes.readUInt32BE(20)], [8, 4]);
  const thumb = await client.images.thumbnail(img.file, 4, 4);
  assert.ok(thumb.file);
  await client.images.delete(img.file);
  await expectError(client.images.delete(img.file), 404, 16);
  await expectError(client.images.upload(Buffer.from('not an image'), 'x.png', 'image/png'), 400, 4);
  const html = await client.files.upload(Buffer.from('<html><head><title>T</title>'
    + '<meta property="og:title" content="From JS"></head></html>'), 'page.html', 'text/html');
  assert.strictEqual(await (await fetch(html.file)).text().then((t) => t.includes('From JS')), true);
  step('images upload, process, thumbnail, delete; files upload');

  // open graph (section 14) of the page just uploaded (nothing leaves loopback)
  const og = await client.og(html.file);
  assert.strictEqual(og.title, 'From JS');
  await client.files.delete(html.file);
  step('og');

  // personalization (section 15): a canned resource and the personalized feed
  const recs = await client.personalization.get('follow_recommendations', { user_id: 'jsbob' });
  assert.deepStrictEqual(recs.results, [{ foreign_id: 'user:jsm1' }]);
  const pf = await client.personalizedFeed({ feed_slug: 'user', user_id: 'jsm1', limit: 5 });
  assert.strictEqual(pf.results[0].object, 'many');
  step('personalization, personalized feed');

  console.log(`ok: ${steps.length} steps with the official JS client: ${steps.join('; ')}`);
})().catch((e) => {
  console.error('FAILED after', steps.join('; ') || 'nothing', '\n', e.stack || e, e.error || '');
  process.exit(1);
});
