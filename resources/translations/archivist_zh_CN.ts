<?xml version='1.0' encoding='utf-8'?>
<TS version="2.1" language="zh_CN">
<context>
    <name>About</name>
    <message>
        <location filename="../../desktop/about.py" line="29" />
        <source>(embedding model)</source>
        <translation>（嵌入模型）</translation>
    </message>
    <message>
        <location filename="../../desktop/about.py" line="30" />
        <source>(starter model)</source>
        <translation>（入门模型）</translation>
    </message>
    <message>
        <location filename="../../desktop/about.py" line="31" />
        <source>(when downloaded)</source>
        <translation>（下载后）</translation>
    </message>
    <message>
        <location filename="../../desktop/about.py" line="32" />
        <source>(vocabulary)</source>
        <translation>（词表）</translation>
    </message>
    <message>
        <location filename="../../desktop/about.py" line="35" />
        <source>Part</source>
        <translation>组件</translation>
    </message>
    <message>
        <location filename="../../desktop/about.py" line="36" />
        <source>Version</source>
        <translation>版本</translation>
    </message>
    <message>
        <location filename="../../desktop/about.py" line="37" />
        <source>Licence</source>
        <translation>许可证</translation>
    </message>
    <message>
        <location filename="../../desktop/about.py" line="40" />
        <source>About Archivist</source>
        <translation>关于 Archivist</translation>
    </message>
    <message>
        <location filename="../../desktop/about.py" line="41" />
        <source>&lt;h3&gt;Archivist&lt;/h3&gt;&lt;p&gt;A private knowledge base that stays on this computer.&lt;/p&gt;</source>
        <translation>&lt;h3&gt;Archivist&lt;/h3&gt;&lt;p&gt;只保存在本机上的私人知识库。&lt;/p&gt;</translation>
    </message>
</context>
<context>
    <name>Asking</name>
    <message>
        <location filename="../../desktop/asking.py" line="84" />
        <source>Still opening the knowledge base…</source>
        <translation>仍在打开知识库…</translation>
    </message>
    <message>
        <location filename="../../desktop/asking.py" line="199" />
        <source>{} documents written to {}</source>
        <translation>已将 {} 个文档写入 {}</translation>
    </message>
    <message>
        <location filename="../../desktop/asking.py" line="200" />
        <source>Extraction stopped</source>
        <translation>提取已停止</translation>
    </message>
    <message>
        <location filename="../../desktop/asking.py" line="250" />
        <source>Exported to {}</source>
        <translation>已导出到 {}</translation>
    </message>
    <message>
        <location filename="../../desktop/asking.py" line="251" />
        <source>Cannot export</source>
        <translation>无法导出</translation>
    </message>
</context>
<context>
    <name>ChatPanel</name>
    <message>
        <location filename="../../desktop/chat_view.py" line="111" />
        <source>Conversation</source>
        <translation>对话</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="114" />
        <source>New</source>
        <translation>新建</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="115" />
        <source>New conversation (Ctrl+N)</source>
        <translation>新建对话 (Ctrl+N)</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="119" />
        <source>Rename, delete or export this conversation</source>
        <translation>重命名、删除或导出此对话</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="122" />
        <source>Rename</source>
        <translation>重命名</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="123" />
        <source>Delete</source>
        <translation>删除</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="124" />
        <source>Export…</source>
        <translation>导出…</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="94" />
        <source>Ask a question about your documents.</source>
        <translation>就您的文档提问。</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="136" />
        <location filename="../../desktop/chat_view.py" line="364" />
        <source>Reasoning ▸</source>
        <translation>推理过程 ▸</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="161" />
        <source>Ask a question (Enter asks, Shift+Enter for a new line)</source>
        <translation>输入问题（Enter 提问，Shift+Enter 换行）</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="168" />
        <source>Ask</source>
        <translation>提问</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="171" />
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="172" />
        <source>Stop the answer (Esc)</source>
        <translation>停止回答 (Esc)</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="175" />
        <source>Copy</source>
        <translation>复制</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="177" />
        <source>Regenerate</source>
        <translation>重新生成</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="127" />
        <source>Conversation:</source>
        <translation>对话：</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="193" />
        <source>New conversation</source>
        <translation>新对话</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="205" />
        <source>Rename conversation</source>
        <translation>重命名对话</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="205" />
        <source>Title:</source>
        <translation>标题：</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="214" />
        <source>Delete conversation</source>
        <translation>删除对话</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="214" />
        <source>Delete this conversation?</source>
        <translation>删除此对话？</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="222" />
        <source>Export conversation</source>
        <translation>导出对话</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="285" />
        <source>From the answer cache</source>
        <translation>来自答案缓存</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="287" />
        <source>Cached answer to a similar question</source>
        <translation>相似问题的缓存答案</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="288" />
        <source>Regenerate to ask the model again.</source>
        <translation>点击“重新生成”可再次询问模型。</translation>
    </message>
    <message>
        <location filename="../../desktop/transcript.py" line="137" />
        <source>You</source>
        <translation>您</translation>
    </message>
    <message>
        <location filename="../../desktop/transcript.py" line="175" />
        <source>Sources</source>
        <translation>来源</translation>
    </message>
    <message>
        <location filename="../../desktop/transcript.py" line="142" />
        <source>(structured answer below)</source>
        <translation>（结构化答案见下方）</translation>
    </message>
    <message>
        <location filename="../../desktop/transcript.py" line="160" />
        <source>You stopped the answer before it was finished.</source>
        <translation>您在回答完成前停止了它。</translation>
    </message>
    <message>
        <location filename="../../desktop/transcript.py" line="162" />
        <source>The answer was stopped: the model was writing the same words again and again. Regenerate, or ask in other words.</source>
        <translation>回答已停止：模型在反复写同样的内容。请重新生成，或换一种问法。</translation>
    </message>
    <message>
        <location filename="../../desktop/transcript.py" line="166" />
        <source>The answer reached its length limit and was cut short.</source>
        <translation>回答达到长度上限，已被截断。</translation>
    </message>
    <message>
        <location filename="../../desktop/transcript.py" line="181" />
        <source>Also read</source>
        <translation>另参考</translation>
    </message>
    <message>
        <location filename="../../desktop/transcript.py" line="183" />
        <source>Read for this answer</source>
        <translation>此回答读取了</translation>
    </message>
    <message>
        <location filename="../../desktop/transcript.py" line="185" />
        <source>The answer cites none of its sources; it was drawn from</source>
        <translation>答案未引用任何来源；它依据的是</translation>
    </message>
    <message>
        <location filename="../../desktop/transcript.py" line="188" />
        <source>Read the best {} of {} passages found: what this model reads in {} s on this computer ({} tokens a second). Settings › Model › Answer starts within sets the time.</source>
        <translation>阅读了找到的 {1} 个段落中最好的 {0} 个：这是此模型在本机 {2} 秒内能读完的量（每秒 {3} 个词元）。可在 设置 › 模型 › 回答开始时间上限 中调整。</translation>
    </message>
    <message>
        <location filename="../../desktop/transcript.py" line="194" />
        <source>Written by the small starter model, a stand-in for gpt-oss-20b: check each sentence against its source.</source>
        <translation>由小型入门模型（gpt-oss-20b 的替身）撰写：请对照来源核对每一句。</translation>
    </message>
    <message>
        <location filename="../../desktop/transcript.py" line="200" />
        <source>Sentences to check: {} (underlined; hover for why).</source>
        <translation>需核对的句子：{} 句（已加下划线，悬停查看原因）。</translation>
    </message>
    <message>
        <location filename="../../desktop/claim_marks.py" line="31" />
        <source>This sentence cites no source.</source>
        <translation>此句未引用任何来源。</translation>
    </message>
    <message>
        <location filename="../../desktop/claim_marks.py" line="33" />
        <source>Not borne out by its source: {}.</source>
        <translation>来源不支持此句：{}。</translation>
    </message>
    <message>
        <location filename="../../desktop/claim_marks.py" line="35" />
        <source>[{}] holds it; click to open it.</source>
        <translation>[{}] 包含此内容；点击打开。</translation>
    </message>
    <message>
        <location filename="../../desktop/chat_view.py" line="364" />
        <source>Reasoning ▾</source>
        <translation>推理过程 ▾</translation>
    </message>
</context>
<context>
    <name>CheckupDialog</name>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="36" />
        <source>Check-up of {}</source>
        <translation>{} 的检查</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="39" />
        <source>Questions you know the answers to, each with the document that should answer it. A run searches each one as asking does and counts it found when that document is among the first {} passages.</source>
        <translation>您已知答案的问题，每个都注明应当回答它的文档。运行时会像提问一样检索每个问题，若该文档出现在前 {} 个段落中即算找到。</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="44" />
        <location filename="../../desktop/checkup_dialog.py" line="64" />
        <source>Question</source>
        <translation>问题</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="44" />
        <source>Document</source>
        <translation>文档</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="44" />
        <location filename="../../desktop/checkup_dialog.py" line="66" />
        <source>Passage</source>
        <translation>段落</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="44" />
        <source>Last run</source>
        <translation>上次运行</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="49" />
        <source>How often does the pump need oil?</source>
        <translation>泵多久需要加一次油？</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="53" />
        <source>Optional: a phrase of the answering passage</source>
        <translation>可选：答案段落中的一句话</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="54" />
        <source>Add question</source>
        <translation>添加问题</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="56" />
        <source>Remove selected</source>
        <translation>移除所选</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="58" />
        <source>Run check-up</source>
        <translation>运行检查</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="65" />
        <source>Answered by</source>
        <translation>答案所在文档</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="100" />
        <source>found at {}</source>
        <translation>第 {} 位找到</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="100" />
        <source>missed</source>
        <translation>未找到</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="108" />
        <source>A test question needs the question and the document that answers it.</source>
        <translation>测试问题需要填写问题以及回答它的文档。</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="129" />
        <source>Running…</source>
        <translation>运行中…</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="137" />
        <source>Running… {} of {}</source>
        <translation>运行中… {} / {}</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="141" />
        <source>Hit rate at {}: {:.0%} ({} of {})</source>
        <translation>前 {} 命中率：{:.0%}（{} / {}）</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="143" />
        <source>({:+.0%} since the last run)</source>
        <translation>（较上次 {:+.0%}）</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="144" />
        <source>Now missed: {}</source>
        <translation>新未找到：{}</translation>
    </message>
    <message>
        <location filename="../../desktop/checkup_dialog.py" line="145" />
        <source>Now found: {}</source>
        <translation>新找到：{}</translation>
    </message>
</context>
<context>
    <name>DocumentsModel</name>
    <message>
        <location filename="../../desktop/library_view.py" line="162" />
        <source>Reading</source>
        <translation>正在读取</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="153" />
        <source>Document</source>
        <translation>文档</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="153" />
        <source>Status</source>
        <translation>状态</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="153" />
        <source>Pages</source>
        <translation>页数</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="153" />
        <source>Chunks</source>
        <translation>片段</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="153" />
        <source>Details</source>
        <translation>详情</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="160" />
        <location filename="../../desktop/library_view.py" line="166" />
        <source>Queued</source>
        <translation>排队中</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="160" />
        <source>Reading {}%</source>
        <translation>正在读取 {}%</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="161" />
        <source>Indexing {}%</source>
        <translation>正在索引 {}%</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="167" />
        <source>Indexed</source>
        <translation>已索引</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="167" />
        <source>Failed</source>
        <translation>失败</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="167" />
        <source>Unfinished</source>
        <translation>未完成</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="161" />
        <location filename="../../desktop/library_view.py" line="168" />
        <source>Searchable by words</source>
        <translation>可按词语搜索</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="181" />
        <source>Indexing stopped before the end; re-index to finish it</source>
        <translation>索引在完成前中断；重新索引即可完成</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="175" />
        <source>Found by its words now; by meaning once indexing finishes</source>
        <translation>现在可按词语找到；索引完成后可按语义找到</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="174" />
        <source>By meaning once indexed</source>
        <translation>索引后可按语义搜索</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="182" />
        <source>Text recognized on {} page(s)</source>
        <translation>已识别 {} 页的文字</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="187" />
        <source>Status: {}</source>
        <translation>状态：{}</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="193" />
        <source>{} pages, {} chunks</source>
        <translation>{} 页，{} 个片段</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="195" />
        <source>{} chunks</source>
        <translation>{} 个片段</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="198" />
        <source>Indexed {}</source>
        <translation>索引于 {}</translation>
    </message>
</context>
<context>
    <name>DownloadBox</name>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="71" />
        <source>Get a model</source>
        <translation>获取模型</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="79" />
        <source>Download</source>
        <translation>下载</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="81" />
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="112" />
        <source>{}. Download size {}; {} free on this disk.</source>
        <translation>{}。下载大小 {}；此磁盘剩余 {}。</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="114" />
        <source>Already downloaded.</source>
        <translation>已下载。</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="116" />
        <source>Not enough free space.</source>
        <translation>磁盘空间不足。</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="123" />
        <source>Download an unverified file?</source>
        <translation>下载未经校验的文件？</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="124" />
        <source>No checksum of {} has been published for Archivist to check it against, so Archivist cannot prove that the file you receive is the one its authors released (a damaged transfer is still caught). Download it only from a source you trust. Download anyway?</source>
        <translation>{} 没有可供 Archivist 核对的已发布校验值，因此无法证明您收到的文件就是作者发布的文件（传输损坏仍会被发现）。请只从您信任的来源下载。仍要下载吗？</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="139" />
        <source>{} of {}, {}/s, {} left</source>
        <translation>{} / {}，{}/秒，剩余 {}</translation>
    </message>
</context>
<context>
    <name>LibraryPanel</name>
    <message>
        <location filename="../../desktop/library_view.py" line="285" />
        <source>Collection</source>
        <translation>知识库</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="289" />
        <source>New, rename or delete a collection</source>
        <translation>新建、重命名或删除知识库</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="292" />
        <source>New collection…</source>
        <translation>新建知识库…</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="293" />
        <source>Rename collection…</source>
        <translation>重命名知识库…</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="294" />
        <source>Delete collection…</source>
        <translation>删除知识库…</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="296" />
        <source>Domain adapter…</source>
        <translation>领域适配器…</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="303" />
        <source>Drop files or folders here, or use “Add files”.</source>
        <translation>将文件或文件夹拖到这里，或使用“添加文件”。</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="307" />
        <source>Add files…</source>
        <translation>添加文件…</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="309" />
        <source>Add folder…</source>
        <translation>添加文件夹…</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="311" />
        <source>Remove</source>
        <translation>移除</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="316" />
        <source>Re-index</source>
        <translation>重新索引</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="319" />
        <source>Follow folder…</source>
        <translation>关注文件夹…</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="320" />
        <source>Index a folder and keep up with what is added, changed or deleted in it</source>
        <translation>索引一个文件夹，并跟进其中新增、修改或删除的文件</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="325" />
        <source>Stop following</source>
        <translation>停止关注</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="334" />
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="339" />
        <source>Collection:</source>
        <translation>知识库：</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="380" />
        <source>{} documents, {} chunks</source>
        <translation>{} 个文档，{} 个片段</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="382" />
        <source>, {} could not be indexed</source>
        <translation>，{} 个无法索引</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="389" />
        <source>Following: {}</source>
        <translation>正在关注：{}</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="391" />
        <source>last change {}</source>
        <translation>最近变化 {}</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="414" />
        <source>Indexing by meaning, {} of {} files: {}</source>
        <translation>正在按语义索引第 {} 个文件（共 {} 个）：{}</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="419" />
        <source>Reading {} of {} files: {}</source>
        <translation>正在读取第 {} 个文件（共 {} 个）：{}</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="433" />
        <source>Add files</source>
        <translation>添加文件</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="433" />
        <source>Documents (*.pdf *.txt *.md *.markdown *.html *.htm *.docx *.csv *.xlsx *.pptx *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)</source>
        <translation>文档 (*.pdf *.txt *.md *.markdown *.html *.htm *.docx *.csv *.xlsx *.pptx *.png *.jpg *.jpeg *.tif *.tiff);;所有文件 (*)</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="439" />
        <source>Add folder</source>
        <translation>添加文件夹</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="444" />
        <source>Follow a folder</source>
        <translation>关注文件夹</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="462" />
        <source>Remove the selected documents from the collection (the files on disk stay)</source>
        <translation>从集合中移除所选文档（磁盘上的文件保留）</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="463" />
        <source>Select the documents to remove in the list first</source>
        <translation>请先在列表中选择要移除的文档</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="475" />
        <source>Retry / re-index</source>
        <translation>重试 / 重新索引</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="477" />
        <source>Remove from the collection</source>
        <translation>从知识库中移除</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="487" />
        <source>New collection</source>
        <translation>新建知识库</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="487" />
        <source>Name of the new collection:</source>
        <translation>新知识库的名称：</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="493" />
        <source>Rename collection</source>
        <translation>重命名知识库</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="493" />
        <source>New name:</source>
        <translation>新名称：</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="499" />
        <source>Domain adapter</source>
        <translation>领域适配器</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="500" />
        <source>A LoRA adapter (a GGUF file made for the model in use) can improve answers in a field where the model is weak, such as law or medicine. Answers from “{}” use it; other collections do not.</source>
        <translation>LoRA 适配器（为当前模型制作的 GGUF 文件）可以改进模型在薄弱领域（如法律或医学）的回答。来自“{}”的回答会使用它，其他集合不会。</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="503" />
        <source>Choose a file…</source>
        <translation>选择文件…</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="504" />
        <source>Use none</source>
        <translation>不使用</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="510" />
        <source>Choose a LoRA adapter</source>
        <translation>选择 LoRA 适配器</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="511" />
        <source>GGUF adapters (*.gguf)</source>
        <translation>GGUF 适配器 (*.gguf)</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="519" />
        <source>Delete collection</source>
        <translation>删除知识库</translation>
    </message>
    <message>
        <location filename="../../desktop/library_view.py" line="520" />
        <source>Delete the collection “{}” and everything indexed in it? The files on disk are not touched.</source>
        <translation>删除知识库“{}”及其中的全部索引？磁盘上的文件不受影响。</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <location filename="../../desktop/asking.py" line="41" />
        <source>Something went wrong: {}. Details are in the log file.</source>
        <translation>出现错误：{}。详情见日志文件。</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="48" />
        <source>Archivist</source>
        <translation>Archivist 知识库</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="77" />
        <source>Opening the knowledge base…</source>
        <translation>正在打开知识库…</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="96" />
        <source>&amp;File</source>
        <translation>文件(&amp;F)</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="97" />
        <source>Add files…</source>
        <translation>添加文件…</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="98" />
        <source>Add folder…</source>
        <translation>添加文件夹…</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="99" />
        <source>Settings…</source>
        <translation>设置…</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="100" />
        <source>Unload the model now</source>
        <translation>立即卸载模型</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="101" />
        <source>Check-up…</source>
        <translation>检查…</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="102" />
        <source>Quit</source>
        <translation>退出</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="111" />
        <source>&amp;Conversation</source>
        <translation>对话(&amp;C)</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="112" />
        <source>New conversation</source>
        <translation>新对话</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="113" />
        <source>Ask a question</source>
        <translation>提问</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="115" />
        <source>&amp;Help</source>
        <translation>帮助(&amp;H)</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="116" />
        <source>Getting started</source>
        <translation>入门</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="117" />
        <source>About Archivist</source>
        <translation>关于 Archivist</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="122" />
        <source>The knowledge base could not be opened</source>
        <translation>无法打开知识库</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="162" />
        <source>Ready</source>
        <translation>就绪</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="170" />
        <source>The knowledge base stopped unexpectedly; restarting it…</source>
        <translation>知识库意外停止，正在重新启动…</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="171" />
        <source>The knowledge base stopped</source>
        <translation>知识库已停止</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="191" />
        <source>Cannot read the collection</source>
        <translation>无法读取知识库</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="202" />
        <source>indexed</source>
        <translation>已索引</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="202" />
        <source>removed</source>
        <translation>已移除</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="202" />
        <source>failed</source>
        <translation>失败</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="204" />
        <source>{}: {}</source>
        <translation>{}：{}</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="211" />
        <source>Cannot follow the folder</source>
        <translation>无法跟踪该文件夹</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="218" />
        <source>Already indexing; add these when it finishes.</source>
        <translation>正在索引中；请在完成后再添加。</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="241" />
        <source>{} indexed, {} unchanged, {} failed</source>
        <translation>已索引 {} 个，未变化 {} 个，失败 {} 个</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="244" />
        <source>Indexing stopped; what was done is kept. </source>
        <translation>索引已停止；已完成的部分会保留。</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="250" />
        <source>Indexing stopped</source>
        <translation>索引已停止</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="257" />
        <source>Cannot remove</source>
        <translation>无法移除</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="267" />
        <source>Cannot change the collection</source>
        <translation>无法修改知识库</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="291" />
        <source>Applying the new settings…</source>
        <translation>正在应用新设置…</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="317" />
        <source>The answer cache is empty.</source>
        <translation>答案缓存已清空。</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="329" />
        <source>Downloaded and verified. It is used from now on.</source>
        <translation>已下载并校验，从现在起使用该模型。</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="330" />
        <source>Downloaded; checked against the server's checksum only. It is used from now on.</source>
        <translation>已下载；仅按服务器提供的校验值核对。从现在起使用该模型。</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="393" />
        <source>Quit Archivist</source>
        <translation>退出 Archivist</translation>
    </message>
    <message>
        <location filename="../../desktop/main_window.py" line="393" />
        <source>Work is still running. Stop it and quit? Finished work is kept.</source>
        <translation>仍有任务在运行。要停止并退出吗？已完成的工作会保留。</translation>
    </message>
</context>
<context>
    <name>ReembedProgress</name>
    <message>
        <location filename="../../desktop/reembed_dialog.py" line="53" />
        <source>{} now searches with {}.</source>
        <translation>{} 现在使用 {} 检索。</translation>
    </message>
    <message>
        <location filename="../../desktop/reembed_dialog.py" line="61" />
        <source>Re-embedding {}: {} of {} passages</source>
        <translation>正在重新嵌入 {}：{} / {} 个段落</translation>
    </message>
    <message>
        <location filename="../../desktop/reembed_dialog.py" line="66" />
        <source>Re-embedding</source>
        <translation>重新嵌入</translation>
    </message>
</context>
<context>
    <name>SchemaEditor</name>
    <message>
        <location filename="../../desktop/structured_view.py" line="50" />
        <source>Your own schema</source>
        <translation>自定义结构</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="61" />
        <source>A JSON Schema describing the object the answer must be (an object or an array at the top).</source>
        <translation>用 JSON Schema 描述答案必须满足的结构（顶层为对象或数组）。</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="75" />
        <source>Not valid JSON: {} (line {}, column {})</source>
        <translation>不是有效的 JSON：{}（第 {} 行，第 {} 列）</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="80" />
        <source>The schema is valid.</source>
        <translation>结构有效。</translation>
    </message>
</context>
<context>
    <name>Schemas</name>
    <message>
        <location filename="../../desktop/structured_view.py" line="37" />
        <source>Action items</source>
        <translation>待办事项</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="38" />
        <source>Financial summary</source>
        <translation>财务摘要</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="39" />
        <source>Key facts</source>
        <translation>要点</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="40" />
        <source>People and contacts</source>
        <translation>人员与联系方式</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="41" />
        <source>Timeline</source>
        <translation>时间线</translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="58" />
        <source>Browse…</source>
        <translation>浏览…</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="157" />
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="163" />
        <source>Automatic: gpt-oss if downloaded, else the starter model</source>
        <translation>自动：已下载则用 gpt-oss，否则用入门模型</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="165" />
        <source>A folder an administrator filled with models (optional)</source>
        <translation>管理员放置模型的文件夹（可选）</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="169" />
        <source>Automatic (what memory allows)</source>
        <translation>自动（视可用内存而定）</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="172" />
        <source>Low (fast)</source>
        <translation>低（快）</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="172" />
        <source>Medium</source>
        <translation>中</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="172" />
        <source>High (thorough)</source>
        <translation>高（细致）</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="177" />
        <source> s</source>
        <translation> 秒</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="178" />
        <source>No limit (as many sources as the context holds)</source>
        <translation>不限（上下文能容纳多少来源就发送多少）</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="181" />
        <source>The model reads its sources before it writes a word: on a computer without a graphics card that is most of the wait. Archivist learns how fast this model reads here and sends the best sources it can read in this time. Questions about whole files you chose are not limited.</source>
        <translation>模型在写下第一个字之前要先阅读来源：在没有显卡的电脑上，这占了大部分等待时间。Archivist 会了解此模型在本机的阅读速度，并发送它能在这段时间内读完的最佳来源。针对您所选整个文件的问题不受此限制。</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="184" />
        <source>End every sentence of an answer with the source it comes from</source>
        <translation>回答的每一句都以其出处结尾</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="187" />
        <source>The model may then only write sentences that end with a source's number, [1] say, so that each can be checked. A citation forced this way is not always right: the checked sentences are still marked when their source does not bear them out. The small starter model cites this way, but what it cites is rarely true.</source>
        <translation>模型只能写以出处编号（例如 [1]）结尾的句子，以便逐句核对。这样强制加上的引用不一定正确：出处不能证实的句子仍会被标出。小型入门模型也会这样引用，但它引用的内容很少属实。</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="193" />
        <source>Automatic</source>
        <translation>自动</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="197" />
        <source> min</source>
        <translation> 分钟</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="198" />
        <location filename="../../desktop/settings_dialog.py" line="204" />
        <source>Never</source>
        <translation>从不</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="203" />
        <source> GB free</source>
        <translation> GB 可用</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="206" />
        <source>Between answers, give the model's memory back when the computer's available memory falls below this.</source>
        <translation>在两次回答之间，当电脑的可用内存低于此值时释放模型占用的内存。</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="212" />
        <source>Model file</source>
        <translation>模型文件</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="213" />
        <source>Models folder</source>
        <translation>模型文件夹</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="214" />
        <source>Context size (tokens)</source>
        <translation>上下文长度（token）</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="215" />
        <source>Reasoning effort</source>
        <translation>推理强度</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="216" />
        <source>Answer starts within</source>
        <translation>回答开始时间上限</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="217" />
        <source>Citations</source>
        <translation>引用</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="218" />
        <source>GPU layers</source>
        <translation>GPU 层数</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="219" />
        <source>Unload the model after</source>
        <translation>空闲多久后卸载模型</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="220" />
        <source>Unload the model below</source>
        <translation>可用内存低于此值时卸载模型</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="223" />
        <source>Remember answers to repeated questions</source>
        <translation>记住重复问题的答案</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="225" />
        <source>Also for questions worded differently (marked as such)</source>
        <translation>措辞不同的问题也适用（会加以标注）</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="227" />
        <source>Read the text of scanned pages and images (text recognition)</source>
        <translation>识别扫描页和图片中的文字（文字识别）</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="229" />
        <source>Clear the answer cache</source>
        <translation>清空答案缓存</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="232" />
        <source>Bundled all-MiniLM-L6-v2</source>
        <translation>内置的 all-MiniLM-L6-v2</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="241" />
        <source>Embedding model folder</source>
        <translation>嵌入模型文件夹</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="242" />
        <source>Data folder</source>
        <translation>数据文件夹</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="245" />
        <source>Empty: this computer only. For example https://archivist.intranet:8700</source>
        <translation>留空：仅本机。例如 https://archivist.intranet:8700</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="248" />
        <source>The personal token your administrator gave you</source>
        <translation>管理员发给您的个人令牌</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="250" />
        <source>With a team server, the library, the answers and the answer cache are your team's: you see the collections you were given, and the files you add are sent to the server. Your token is kept in the system keyring where there is one.</source>
        <translation>使用团队服务器时，文档库、回答和答案缓存都属于您的团队：您只能看到授权给您的知识库，您添加的文件会发送到服务器。如系统有密钥环，您的令牌将保存在其中。</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="257" />
        <source>Team server</source>
        <translation>团队服务器</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="258" />
        <source>Your token</source>
        <translation>您的令牌</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="261" />
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="262" />
        <source>Data</source>
        <translation>数据</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="263" />
        <source>Team</source>
        <translation>团队</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="272" />
        <source>Choose a GGUF model</source>
        <translation>选择 GGUF 模型</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="273" />
        <source>GGUF models (*.gguf)</source>
        <translation>GGUF 模型 (*.gguf)</translation>
    </message>
    <message>
        <location filename="../../desktop/settings_dialog.py" line="278" />
        <source>Choose a folder</source>
        <translation>选择文件夹</translation>
    </message>
</context>
<context>
    <name>SourcePanel</name>
    <message>
        <location filename="../../desktop/source_view.py" line="101" />
        <location filename="../../desktop/source_view.py" line="199" />
        <source>Click a citation to see its source.</source>
        <translation>点击引用可查看其来源。</translation>
    </message>
    <message>
        <location filename="../../desktop/source_view.py" line="105" />
        <source>Open file</source>
        <translation>打开文件</translation>
    </message>
    <message>
        <location filename="../../desktop/source_view.py" line="110" />
        <source>Zoom out</source>
        <translation>缩小</translation>
    </message>
    <message>
        <location filename="../../desktop/source_view.py" line="111" />
        <source>Fit width</source>
        <translation>适合宽度</translation>
    </message>
    <message>
        <location filename="../../desktop/source_view.py" line="111" />
        <source>Fit the page to the pane's width</source>
        <translation>使页面适合窗格宽度</translation>
    </message>
    <message>
        <location filename="../../desktop/source_view.py" line="112" />
        <source>Zoom in</source>
        <translation>放大</translation>
    </message>
    <message>
        <location filename="../../desktop/source_view.py" line="211" />
        <source>page {}</source>
        <translation>第 {} 页</translation>
    </message>
</context>
<context>
    <name>StatusBar</name>
    <message>
        <location filename="../../desktop/status_bar.py" line="34" />
        <source>Model: starting…</source>
        <translation>模型：启动中…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="46" />
        <source>Looking for sources…</source>
        <translation>正在查找来源…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="50" />
        <source>Found 1 source…</source>
        <translation>找到 1 个来源…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="50" />
        <source>Found {} sources…</source>
        <translation>找到 {} 个来源…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="59" />
        <source>Loading {}…</source>
        <translation>正在加载 {}…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="65" />
        <source>Reading 1 source</source>
        <translation>正在阅读 1 个来源</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="67" />
        <source>Reading {} sources</source>
        <translation>正在阅读 {} 个来源</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="69" />
        <source>Reading the question</source>
        <translation>正在阅读问题</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="73" />
        <source>({} of {} tokens)</source>
        <translation>（{} / {} 个词元）</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="77" />
        <source>{} {}, about {} s left…</source>
        <translation>{}{}，约剩 {} 秒…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="83" />
        <source>Thinking it over…</source>
        <translation>正在思考…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="85" />
        <source>Writing the answer…</source>
        <translation>正在撰写回答…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="88" />
        <source>Extracting: {} of {} documents</source>
        <translation>正在提取：第 {} 个文档（共 {} 个）</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="127" />
        <source>Search model: {}</source>
        <translation>检索模型：{}</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="132" />
        <source>not loaded</source>
        <translation>未加载</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="133" />
        <source>loading…</source>
        <translation>加载中…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="134" />
        <source>ready</source>
        <translation>就绪</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="135" />
        <source>generating…</source>
        <translation>生成中…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="136" />
        <source>unloaded after idle</source>
        <translation>空闲后已卸载</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="123" />
        <source>Model: {} — {}</source>
        <translation>模型：{} — {}</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="137" />
        <source>unloaded: memory ran low</source>
        <translation>内存不足，已卸载</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="142" />
        <source>loading its weights…</source>
        <translation>正在加载权重…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="142" />
        <source>reading the sources…</source>
        <translation>正在阅读来源…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="143" />
        <source>thinking…</source>
        <translation>正在思考…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="143" />
        <source>writing…</source>
        <translation>正在撰写…</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="145" />
        <source> ({:.0f} MB)</source>
        <translation>（{:.0f} MB）</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="149" />
        <source>{}: {} documents, {} chunks</source>
        <translation>{}：{} 个文档，{} 个片段</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="153" />
        <source>Cache off</source>
        <translation>缓存已关闭</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="155" />
        <source>Cache: {} hits</source>
        <translation>缓存命中 {} 次</translation>
    </message>
    <message>
        <location filename="../../desktop/status_bar.py" line="156" />
        <source>{} answers served from the cache, {} asked of the model</source>
        <translation>{} 个答案来自缓存，{} 个由模型回答</translation>
    </message>
</context>
<context>
    <name>StructuredPanel</name>
    <message>
        <location filename="../../desktop/structured_view.py" line="95" />
        <source>Structured answer</source>
        <translation>结构化答案</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="96" />
        <source>Answer as an object of a fixed shape instead of prose</source>
        <translation>以固定结构的对象作答，而非段落文字</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="104" />
        <source>Your own…</source>
        <translation>自定义…</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="106" />
        <source>Edit schema…</source>
        <translation>编辑结构…</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="113" />
        <source>Field</source>
        <translation>字段</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="113" />
        <source>Value</source>
        <translation>值</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="113" />
        <source>Sources</source>
        <translation>来源</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="121" />
        <source>Copy JSON</source>
        <translation>复制 JSON</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="123" />
        <source>Save…</source>
        <translation>保存…</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="125" />
        <source>Extract from every document…</source>
        <translation>从每个文档中提取…</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="129" />
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="189" />
        <source>not found in the sources</source>
        <translation>来源中未找到</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="190" />
        <source>No retrieved passage contains this value; check it before relying on it.</source>
        <translation>检索到的段落中都没有这个值；使用前请核实。</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="208" />
        <source>Save result</source>
        <translation>保存结果</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="217" />
        <source>Extract to</source>
        <translation>提取到</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="217" />
        <source>CSV (*.csv);;JSON Lines (*.jsonl)</source>
        <translation>CSV (*.csv);;JSON Lines (*.jsonl)</translation>
    </message>
    <message>
        <location filename="../../desktop/structured_view.py" line="225" />
        <location filename="../../desktop/structured_view.py" line="226" />
        <source>%v of %m documents</source>
        <translation>%v / %m 个文档</translation>
    </message>
</context>
<context>
    <name>WelcomePage</name>
    <message>
        <location filename="../../desktop/welcome.py" line="29" />
        <source>&lt;h1&gt;Welcome to Archivist&lt;/h1&gt;</source>
        <translation>&lt;h1&gt;欢迎使用 Archivist&lt;/h1&gt;</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="32" />
        <source>Archivist answers questions about your documents, on this computer. It needs a language model: no gpt-oss model was found here yet.</source>
        <translation>Archivist 在本机上回答有关您文档的问题。它需要一个语言模型：这里尚未找到 gpt-oss 模型。</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="36" />
        <source>Start now with the small starter model</source>
        <translation>立即使用小型入门模型开始</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="38" />
        <source>SmolLM2-135M, a small stand-in for gpt-oss-20b: it answers quickly but far less well.</source>
        <translation>SmolLM2-135M 是 gpt-oss-20b 的小型替代：回答很快，但质量差得多。</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="39" />
        <source>Download gpt-oss-20b ({})</source>
        <translation>下载 gpt-oss-20b（{}）</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="42" />
        <source>{} free on this disk. The download can be paused and resumed.</source>
        <translation>此磁盘剩余 {}。下载可以暂停并继续。</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="44" />
        <source>Documents in Chinese or another language? Get multilingual search ({})</source>
        <translation>文档是中文或其他语言？获取多语言检索模型（{}）</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="48" />
        <source>Choose a GGUF model file…</source>
        <translation>选择 GGUF 模型文件…</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="50" />
        <source>Try it on sample documents</source>
        <translation>用示例文档试一试</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="81" />
        <source>Choose a GGUF model</source>
        <translation>选择 GGUF 模型</translation>
    </message>
    <message>
        <location filename="../../desktop/welcome.py" line="82" />
        <source>GGUF models (*.gguf)</source>
        <translation>GGUF 模型 (*.gguf)</translation>
    </message>
</context>
<context>
    <name>parent</name>
    <message>
        <location filename="../../desktop/reembed_dialog.py" line="17" />
        <source>The embedding model changed</source>
        <translation>嵌入模型已更改</translation>
    </message>
    <message>
        <location filename="../../desktop/reembed_dialog.py" line="19" />
        <source>{} was indexed with {}; search now uses {}.

Re-embedding reads its passages again with the new model. The old vectors stay in use until it is complete, and you can stop at any time.</source>
        <translation>{} 是用 {} 建立索引的；现在检索使用 {}。

重新嵌入会用新模型重新读取其中的段落。完成之前旧向量仍然可用，您也可以随时停止。</translation>
    </message>
    <message>
        <location filename="../../desktop/reembed_dialog.py" line="22" />
        <source>Re-embed now</source>
        <translation>立即重新嵌入</translation>
    </message>
    <message>
        <location filename="../../desktop/reembed_dialog.py" line="33" />
        <source>Re-embedding {}…</source>
        <translation>正在重新嵌入 {}…</translation>
    </message>
    <message>
        <location filename="../../desktop/reembed_dialog.py" line="33" />
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <location filename="../../desktop/reembed_dialog.py" line="34" />
        <source>Re-embedding</source>
        <translation>重新嵌入</translation>
    </message>
</context>
<context>
    <name>window</name>
    <message>
        <location filename="../../desktop/app.py" line="168" />
        <source>Archivist stopped unexpectedly</source>
        <translation>Archivist 意外停止</translation>
    </message>
    <message>
        <location filename="../../desktop/app.py" line="169" />
        <source>Part of Archivist stopped unexpectedly last time ({}). Your documents and conversations are kept. The crash report is in {}; please include it if you report the problem.</source>
        <translation>上次 Archivist 的一部分意外停止（{}）。您的文档和对话均已保留。崩溃报告位于 {}；报告问题时请附上它。</translation>
    </message>
</context>
</TS>