"""Given names of the 1990 US Census (frequency lists dist.female.first and dist.male.first, public
domain, as shipped by the PyPI package `names` 0.3.0, MIT licence), lower case. Removed:
names that are common English words in program text and documentation (will, may, mark, grace ...),
names that are places or everyday words (chase, grant, paris, hope ...), and those already in
GIVEN_NAMES (hub/redaction/detectors.py). Read by ``hub.redaction.detectors`` (detector ``name_given``).
"""

from __future__ import annotations

from typing import Final

#: Lower case, sorted, separated by blanks.
CENSUS_GIVEN_NAMES: Final[tuple[str, ...]] = tuple("""
abbey abbie abby abdul abe abel abraham abram adah adalberto adaline adan addie adela adelaida adelaide adele
adelia adelina adeline adell adella adelle adena adina adolfo adolph adria adriana adriane adrianna adrianne
adrien adriene adrienne afton agatha agnes agnus agripina agueda agustin agustina ahmad aida aide aiko aileen
ailene aimee aja akiko akilah alaina alaine alana alane alanna alayna alba alberta albertha albertina
albertine alberto albina alda alden aldo alease alec alecia aleen aleida aleisha alejandra alejandrina
alejandro alena alene alesha aleshia alesia alessandra aleta aletha alethea alethia alex alexa alexandra
alexandria alexia alfonso alfonzo alfred alfreda alfredia alfredo ali alia alica alida alina aline alisa alise
alisha alishia alisia alison alissa alita alix aliza alla allan alleen allegra allen allena allene allie
alline allyn allyson almeda almeta alona alonso alonzo alphonse alphonso alta altagracia altha althea alton
alva alvaro alvera alverta alvin alvina alyce alycia alysa alyse alysha alysia alyson amada amado amal amalia
amberly ambrose amee america ami amie amiee amina amira ammie amos amparo anabel analisa anamaria anastacia
anastasia andera anderson andra andre andreas andree andres andria andy anette angel angele angelena angeles
angelia angelic angelica angelika angelina angeline angelique angelita angella angelo angelyn angie angila
angla anglea anh anibal anika anisa anisha anissa anitra anja anjanette anjelica annabel annabell annabelle
annalee annalisa annamae annamaria annamarie anneliese annelle annemarie annett annetta annette annice annika
annis annita annmarie antione antionette antoine antoinette anton antone antonetta antonette antonia
antonietta antonina antony antwan anya apolonia apryl ara araceli aracelis aracely arcelia archie ardath
ardelia ardell ardella ardelle arden ardis ardith aretha argelia argentina ariana ariane arianna arianne arica
arie ariel arielle arla arlean arleen arlen arlena arlene arletha arletta arlette arlie arlinda arline arlyne
armand armanda armandina armando armida arminda arnetta arnette arnita arnold arnoldo arnulfo aron arron artie
arturo arvilla asa asha ashanti ashely ashlea ashlee ashleigh ashli ashlie ashly ashlyn ashton asia asley
assunta astrid asuncion aubrey audie audra audrea audria audrie audry augusta augustina augustine augustus
aundrea aura aurea aurelia aurelio aurora aurore autumn avelina avery avis avril awilda ayako ayana ayanna
ayesha azalee azucena azzie babara babette bailey bambi bao barabara barbar barbera barbie barbra bari barney
barrett barrie barry bart barton basil basilia bea beata beatrice beatris beatriz beau beaulah bebe becki
beckie becky belen belia belinda belkis bell bella belle belva ben benedict benita benito bennett bennie benny
benton berenice berna bernadette bernadine bernarda bernardina bernardine bernardo berneice bernetta bernice
bernie berniece bernita bert berta bertha bertie bertram beryl bess bessie bethanie bethann bethany bethel
betsey betsy bette bettie bettina bettyann bettye beula beulah bev beverlee beverley bianca bibi billi billie
billye birdie birgit blaine blair blake blanca blanch blanche blondell blossom blythe bobbi bobbie bobbye
bobette bok bong bonita bonny booker boris boyce boyd brad bradford bradley bradly brady brain branda brande
brandee branden brandi brandie brandy brant breana breann breanna breanne bree brendan brendon brenna brent
brenton bret brett briana brianna brianne brice bridget bridgett bridgette brigette brigid brigida brigitte
brinda britany britney britni britt britta brittaney brittani brittanie britteny brittney brittni brittny
brock broderick bronwyn brook brooke brooks bruna brunilda bruno bryanna bryant bryce brynn bryon buck bud
buddy buena buffy buford bula bulah bunny burl burma burt burton buster byron caitlin caitlyn calandra caleb
calista callie calvin camelia camellia cameron cami camie camilla camille cammie cammy candace candance
candelaria candi candice candida candie candis candra candy candyce caprice cara caren carey cari caridad
carie carin carina carisa carissa carita carla carlee carleen carlena carlene carletta carley carli carlie
carline carlita carlo carlota carlotta carlton carly carlyn carma carman carmel carmela carmelia carmelina
carmelita carmella carmelo carmina carmine carmon carola carolann carole carolee carolin carolina caroll
carolyne carolynn caron caroyln carri carrie carrol carroll carson carter cary caryl carylon caryn casandra
casey casie casimira cassaundra cassey cassi cassidy cassie cassondra cassy catalina catarina caterina
catharine catherin catherina cathern catheryn cathey cathi cathie cathleen cathrine cathryn cathy catina
catrice catrina cayla cecelia cecil cecila cecile cecilia cecille cecily cedric cedrick celena celesta celeste
celestina celestine celia celina celinda celine celsa ceola cesar chad chadwick chae chana chanda chandra
chanel chanell chanelle chang chantal chantay chante chantel chantell chantelle chara charis charise charissa
charisse charita charity charla charleen charlena charlene charlesetta charlette charley charline charlott
charlsie charlyn charmain charmaine charolette chas chasidy chasity chassidy chastity chau chauncey chaya
chelsea chelsey chelsie cher chere cheree cherelle cheri cherie cherilyn cherise cherish cherly cherlyn cherri
cherrie cherryl chery cheryle cheryll chester chet cheyenne chia chieko chin china ching chiquita chong
chrissy christa christal christeen christel christen christena christene christi christia christiana
christiane christie christin christinia christoper christy chrystal chu chuck chun chung ciara cicely ciera
cierra cinda cinderella cindi cindie cinthia cira clair clare claretha claretta claribel clarice clarinda
clarine claris clarisa clarissa clarita clark classie claud claude claudette claudia claudie claudine claudio
clay clayton clelia clemencia clement clemente clementina clementine clemmie cleo cleopatra cleora cleotilde
cleta cletus cleveland cliff clifford clifton clint clinton clora clorinda clotilde clyde codi cody colby cole
coleen coleman colene coletta colette colin colleen collen collene collette collin colton columbus concepcion
conception concetta concha conchita connie conrad constance consuela consuelo contessa cora coral coralee
coralie corazon cordelia cordell cordia cordie coreen corene coretta corey cori corie corina corine corinna
corinne corliss cornelia cornelius cornell corrie corrin corrina corrine corrinne cortez cortney cory courtney
coy creola cris criselda crissy crista cristal cristen cristi cristie cristin cristina cristine cristobal
cristopher cristy cruz crysta crystle cuc curt curtis cyndi cyndy cyril cyrstal cyrus cythia dacia dagmar
dagny dahlia daina daine daisey dakota dalene dalia dalila dalton damaris damian damien damion damon dan dana
danae dane danelle danette dani dania danial danica daniela daniele daniell daniella danika danille danilo
danita dann danna dannette dannie dannielle danny dante danuta danyel danyell danyelle daphine daphne dara
darby darcel darcey darci darcie darcy darell daren daria darin dario darius darla darleen darlena darlene
darline darnell daron darrel darrell darren darrick darrin darron darryl daryl dave davida davina davis dawna
dawne dayle dayna daysi deadra deana deandra deandre deandrea deane deangelo deann deanna deanne deb debbi
debbie debbra debby debera debi debora debrah debroah dede dedra dee deeann deeanna deedee deedra deena deetta
deidra deidre deirdre deja delaine delana delbert delcie delena delfina delia delicia delila delilah delinda
delisa dell della delma delmar delmer delmy delois deloise delora deloras delores deloris delorse delpha
delphia delphine delsie demarcus demetra demetria demetrice demetrius dena denae deneen denese denice denis
denisha denisse denita denna dennise denny denyse deon deonna derick derrick deshawn desirae desire desiree
desmond despina dessie destiny detra devin devon devona devora devorah dewayne dewey dewitt dexter dian diann
dianna dianne dick diedra diedre dierdre digna dillon dimple dina dinah dino dinorah dion dione dionna dionne
dirk divina dixie dodie dollie dolly doloris domenic domenica dominga domingo dominic dominica dominick
dominique dominque domitila domonique dona donella donetta donette dong donita donn donnell donnetta donnette
donnie donny donovan donte donya dora dorathy dorcas doreatha doreen dorene doretha dorethea doretta dori
doria dorian dorie dorinda dorine dorla dorotha dorothea dorris dorsey dortha dorthea dorthey dorthy dottie
dotty doug douglass dovie doyle dreama drema drucilla drusilla duane dudley dulce dulcie duncan dung dusti
dustin dwain dwana dwayne dwight dyan earle earlean earleen earlene earlie earline earnest earnestine eartha
eboni ebonie ebony eda edda eddie eddy edelmira eden edgar edgardo edie edison edmond edmund edmundo edna edra
edris eduardo edwardo edwin edwina edyth edythe effie efrain efren ehtel eilene ela eladia elaina elana elane
elanor elayne elba elbert elda elden eldon eldora eldridge eleanora eleanore elease elena elene eleni elenor
elenora elenore eleonor eleonora eleonore elfreda elfrieda elfriede eli elia eliana elias elicia elida elidia
elin elina elinor elinore elisa elisabeth elise eliseo elisha elissa eliz eliza elizabet elizbeth elizebeth
elke ellamae ellan ellena elli ellie elliot elliott ellis ellsworth elly ellyn elma elmer elmira elmo elna
elnora elodia elois eloisa eloise elouise eloy elroy elsa elsie elsy elton elva elvera elvia elvie elvin
elvina elvira elvis elwanda elwood elyse elza ema emanuel emelda emelia emelina emeline emely emerald emerita
emerson emery emiko emil emile emilee emilia emilie emilio emmaline emmanuel emmett emmie emmitt emmy emogene
emory ena enda enedina eneida enid enoch enola enrique enriqueta epifania era erasmo erich erick ericka erik
erika erinn erlene erlinda erline erma ermelinda erminia erna ernest ernestina ernestine ernesto ernie errol
ervin erwin eryn esmeralda esperanza essie esta esteban estefana estela estell estella estelle ester estrella
etha ethel ethelene ethelyn ethyl etsuko etta ettie eufemia eugena eugenia eugenie eugenio eula eulah eulalia
eun euna eunice eura eusebia eusebio eustolia evalyn evan evangelina evangeline evelia evelin evelina eveline
evelyne evelynn everett everette evette evia evie evita evon evonne ewa exie ezekiel ezequiel ezra fabian
fabiola fae fairy fallon fannie fanny farah farrah fatimah faustina faustino fausto faviola fawn fay faye
federico felecia felica felice felicia felicidad felicita felicitas felipa felipe felisa felisha felix felton
ferdinand fermin fermina fern fernanda fernande fernando ferne fidel fidela fidelia filiberto filomena fiona
flavia fleta flo flor flora florance florence florencia florencio florene florentina florentino floretta
floria florida florinda florine florrie flossie floy floyd fonda forrest foster fran france francene francesca
francesco franchesca francie francina francine francisca francisco francoise frankie franklin franklyn
fransisca freda fredda freddie freddy frederic frederica frederick fredericka fredia fredric fredrick
fredricka freeda freeman freida frida frieda fritz fumiko gabriela gabriele gabriella gabrielle gail gala gale
galen galina garfield garland garnet garnett garret garrett garry garth gaston gavin gaye gayla gayle gaylene
gaylord gaynell gaynelle gearldine gema gemma gena genaro genesis geneva genevie genevieve genevive genia
genie genna gennie genny genoveva geoffrey georgann georgeann georgeanna georgene georgetta georgette georgia
georgiana georgiann georgianna georgianne georgie georgina georgine geraldine geraldo geralyn gerard gerardo
gerda geri germaine german gerri gerry gertha gertie gertrud gertrude gertrudis gertude ghislaine gia gianna
gidget gigi gil gilbert gilberte gilberto gilda gillian gilma gina ginette ginger ginny gino giovanna giovanni
gisela gisele giselle gita giuseppe giuseppina gladis glady glayds glen glenda glendora glenn glenna glennie
glennis glinda glynda glynis golda goldie gonzalo gordon gracia gracie graciela grady graham graig granville
grayce grazyna greg gregg gregoria gregorio greta gretchen gretta gricelda grisel griselda grover guadalupe
gudrun guillermina guillermo gus gussie gustavo gwen gwenda gwendolyn gwenn gwyn gwyneth hae hai hailey hal
haley halina halley hallie han hana hanh hank hanna hannelore hans harlan harland harley harmony harriet
harriett harriette harris harrison harvey hassan hassie hattie haydee hayden hayley haywood heath hector
hedwig hedy hee heide heidi heidy heike helaine helena helene helga hellen henrietta henriette herb herbert
heriberto herlinda herma herman hermelinda hermila hermina hermine herminia herschel hershel herta hertha
hester hettie hiedi hien hilaria hilario hilary hilda hilde hildegard hildegarde hildred hillary hilma hilton
hipolito hiram hiroko hisako hoa hobert holley holli hollie hollis homer honey hong horace horacio hortencia
hortense hortensia hosea hoyt hsiu hubert hue huey hugh hugo hui hulda humberto hung huong hwa hyacinth hye
hyman hyo hyon hyun ian ida idalia idell idella iesha ignacia ignacio ike ila ilana ilda ileana ileen ilene
iliana illa ilona ilse iluminada ima imelda imogene ina india indira inell ines inez inga inge ingeborg inger
inocencia iola iona ione ira iraida irena irene irina irish irma irmgard irvin irving irwin isaac isabel
isabell isadora isaiah isaias isaura isela isiah isidra isidro isis ismael isobel israel issac iva ivana
ivelisse ivette ivey ivonne ivory ivy izetta izola jacalyn jacelyn jacinda jacinta jacinto jackeline jackelyn
jacki jackie jacklyn jackqueline jackson jaclyn jacqualine jacque jacquelin jacquelyn jacquelyne jacquelynn
jacques jacquetta jacqui jacquie jacquiline jacquline jacqulyn jada jadwiga jae jaime jaimee jaimie jake
jaleesa jalisa jama jamaal jamal jamar jame jamee jamel jamey jami jamika jamila jamison jammie jana janae
janay janean janee janeen janel janell janella janelle janene janessa janeth janett janetta janette janey jani
janie janiece janina janine janis janise janita jann janna jannet jannette jannie january janyce jaqueline
jaquelyn jared jarod jarred jarrett jarrod jarvis jasmin jasmine jasper jaunita javier jay jaye jayme jaymie
jayna jayne jayson jazmin jazmine jeana jeane jeanelle jeanene jeanett jeanetta jeanette jeanice jeanie
jeanine jeanmarie jeanna jeanne jeannetta jeannette jeannie jeannine jed jeff jefferey jefferson jeffery
jeffie jeffry jen jena jenae jene jenee jenell jenelle jenette jeneva jeni jenice jenifer jeniffer jenine
jenise jenna jennefer jennell jennette jenni jennie jenniffer jennine jenny jerald jeraldine jeramy jere
jeremiah jeri jerica jerilyn jerlene jermaine jerold jerome jeromy jerrell jerri jerrica jerrie jerrod jerrold
jesenia jesica jess jessenia jessi jessia jessie jessika jestine jesus jesusa jesusita jetta jettie jewel
jewell jillian jimmie jimmy jina jinny joana joane joanie joann joanna joannie joaquin joaquina jocelyn jodee
jodi jodie jody joeann joel joella joelle joellen joesph joetta joette joey johana johanna johanne johna
johnathan johnathon johnetta johnette johnie johnna johnnie johnsie johnson joi joie jolanda joleen jolene
joline jolyn jolynn jon jona jonah jonas jonathon jone jonell jonelle jong joni jonie jonna jonnie jordon
jorge josef josefa josefina josefine joselyn josephina josephine josette josh josiah josie joslyn jospeh
josphine josue jovan jovita joya joycelyn joye juana juanita jude judi judie judson jule julee julene jules
juli juliana juliane juliann julianna julianne julieann julienne juliet julieta julietta juliette julio
julissa julius jung junie junior junita junko justa justina justine jutta kacey kaci kacie kacy kai kaila
kaitlin kaitlyn kala kaleigh kaley kali kallie kalyn kam kamala kami kamilah kandace kandi kandice kandis
kandra kandy kanesha kanisha kara karan kareem kareen karena karey kari karie karima karin karina karine
karisa karissa karl karla karleen karlene karly karlyn karma karmen karol karole karoline karolyn karon karren
karri karrie karry kary karyl karyn kasandra kasey kasha kasi kasie kassandra kassie kate katelin katelyn
katelynn katerine kathaleen katharina katharine katharyn kathe katheleen katherin katherina kathern katheryn
kathey kathi kathie kathlene kathline kathlyn kathrin kathrine kathryne kathyrn kati katia katina katlyn
katrice katrina kattie katy kay kayce kaycee kaye kaylee kayleen kayleigh kaylene kazuko kecia keeley keely
keena keenan keesha keiko keila keira keisha keitha keli kelle kellee kelley kelli kellie kellye kelsey kelsi
kelsie kelvin kemberly ken kena kenda kendal kendra kendrick keneth kenia kenisha kenna kennith kenny kenton
kenya kenyatta kenyetta kera keren keri kermit kerri kerrie kerry kerstin kesha keshia keturah keva keven
khadijah khalilah kia kiana kiara kiera kiersten kiesha kieth kiley kim kimber kimberely kimberlee kimberley
kimberli kimberlie kimbery kimbra kimi kimiko kina kindra kip kira kirby kirk kirsten kirstie kirstin kisha
kit kittie kitty kiyoko kizzie kizzy klara korey kori kortney kory kourtney kraig kris krishna krissy krista
kristal kristan kristeen kristel kristen kristi kristian kristie kristin kristina kristine kristle kristofer
kristopher kristy kristyn krysta krystal krysten krystin krystina krystle krystyna kum kurtis kyla kylee kylie
kym kymberly kyoko kyong kyra kyung lacey lachelle laci lacie lacresha lacy ladawn ladonna lady lael lahoma
lai laila laine lajuana lakeesha lakeisha lakendra lakenya lakesha lakeshia lakia lakiesha lakisha lakita lala
lamar lamonica lamont lan lana lance landon lanell lanelle lanette lani lanie lanita lannie lanny lanora
laquanda laquita lara larae laraine laree larhonda larisa larissa larita laronda larraine larue lasandra
lashanda lashandra lashaun lashaunda lashawn lashawna lashawnda lashay lashell lashon lashonda lashunda
lasonya latanya latarsha latasha latashia latesha latia laticia latina latisha latonia latonya latoria latosha
latoya latoyia latrice latricia latrina latrisha launa lauralee lauran laure laureen laurel laurena laurence
laurene lauretta laurette lauri laurice laurie laurinda laurine lauryn lavada lavelle lavenia lavera lavern
laverna laverne laveta lavette lavina lavinia lavon lavona lavonda lavone lavonia lavonna lavonne lawana
lawanda lawanna lawerence layla layne lazaro lea leana leandra leandro leann leanna leanne leanora leatha
leatrice lecia leda leeann leeanna leeanne leena leesa leia leida leif leigh leigha leighann leila leilani
leisa leisha lekisha lela lelah leland lelia lemuel lena lenard lenita lenna lennie lenny lenora lenore leo
leola leoma leon leona leonarda leonardo leone leonel leonia leonida leonie leonila leonor leonora leonore
leontine leopoldo leora leota lera leroy les lesa lesha lesia leslee lesley lesli lessie lester leta letha
leticia letisha letitia lettie letty levi lewis lexie lezlie lia liana liane lianne libbie libby liberty
librada lida lidia lien lieselotte ligia lila lili lilia lilian liliana lilla lilli lillia lilliam lilliana
lillie lilly lily lin lina lindsay lindsey lindsy lindy linette ling linh linn linnea linnie lino linsey
linwood lionel lisabeth lisandra lisbeth lise lisette lisha lissa lissette lita livia liz liza lizabeth
lizbeth lizeth lizette lizzette lizzie lloyd loan logan loida loise lola lolita loma lona londa loni lonna
lonnie lonny lora loraine loralee lore lorean loree loreen lorelei loren lorena lorene lorenza lorenzo loreta
loretta lorette loria loriann lorie lorilee lorina lorinda lorine loris lorita lorna lorraine lorretta lorri
lorriane lorrie lorrine lory lottie lou louann louanne louella louetta louie louisa loura lourdes lourie
louvenia love lovella lovetta lovie lowell loyce loyd luana luann luanna luanne luba luci lucia luciana
luciano lucie lucien lucienne lucila lucile lucilla lucille lucina lucinda lucio lucius lucrecia lucretia
ludie ludivina lue luella luetta luigi luisa luise luke lula lulu luna lupe lupita lura lurlene lurline luther
luvenia luz lyda lydia lyla lyle lyman lyn lynda lyndia lyndon lyndsay lyndsey lynell lynelle lynetta lynette
lynn lynna lynne lynnette lynsey lynwood mabel mabelle mable machelle macie mack mackenzie macy madalene
madaline madalyn maddie madelaine madeleine madelene madeline madelyn madge madie madlyn madonna mae maegan
mafalda magali magaly magan magaret magda magdalen magdalena magdalene magen maggie magnolia mahalia mai maia
maida maile maira maire maisha maisie majorie makeda malcolm malcom malena malia malik malika malinda malisa
malissa malka mallie mallory malorie malvina mamie mammie mana manda mandi mandie mandy manie manuel manuela
mao maple mara maragaret maragret maranda marc marcel marcela marcelene marcelina marceline marcelino marcell
marcella marcelle marcellus marcelo marcene marchelle marci marcia marcie marco marcos marcus marcy mardell
maren marg margareta margarete margarett margaretta margarette margarita margarite margarito margart marge
margene margeret margert margery marget margherita margie margit margo margorie margot margret margrett
marguerita marguerite margurite margy marhta mari mariah mariam marian mariana marianela mariann marianna
marianne mariano maribel maribeth marica maricela maricruz mariel mariela mariella marielle marietta mariette
mariko marilee marilou marilu marilynn marin marina marinda marine marion maris marisa marisela marisha
marisol marissa marita maritza marivel marjorie marjory marketta markita markus marla marlana marleen marlen
marlena marlene marlin marline marlo marlon marlyn marlys marna marni marnie marquerite marquetta marquis
marquita marquitta marry marsha marshall marta marth marti martina martine marty marva marvel marvella marvin
marvis marx marya maryalice maryam maryann maryanna maryanne marybelle marybeth maryellen maryetta maryjane
maryjo maryland marylee marylin maryln marylou marylouise marylyn marylynn maryrose masako matha mathew
mathilda mathilde matilda matilde matt mattie maud maude maudie maura maureen maurice mauricio maurine maurita
mauro mavis maxie maximina maximo maxine maxwell maya maybell maybelle maye mayme maynard mayola mayra mazie
mckenzie mckinley meagan meaghan mechelle meda mee meg meggan meghan meghann mel melaine melani melania
melanie melany melba melda melia melida melina melinda melisa melissia melita mellie mellisa mellissa melodee
melodi melodie melody melonie melony melva melvin melvina melynda mendy mercedes mercedez mercy meredith meri
merideth meridith merilyn merissa merle merlene merlin merlyn merna merri merrie merrilee merrill merry mertie
mervin meryl mia mica micaela micah micha michaela michaele michal michale micheal michel michele michelina
micheline michell michiko mickey micki mickie miesha migdalia mignon miguel miguelina mika mikaela mike mikel
miki mikki mila milagro milagros milan milda milford milissa millard millicent millie milly milo milton mimi
mina minda mindi mindy minerva ming minna minnie minta miquel mira miranda mireille mirella mireya miriam
mirian mirna mirta mirtha misha missy misti mistie misty mitch mitchel mitchell mitsue mitsuko mittie mitzi
mitzie miyoko modesta modesto mohamed mohammad moira moises mollie molly mona monet monika monique monnie
monroe monserrate monte monty moon mora morgan moriah morris morton mose moses moshe mozell mozella mozelle
mui muoi muriel murray myesha myles myong myra myriam myrl myrle myrna myron myrta myrtice myrtie myrtis
myrtle myung nada nadene nadia nadine naida nakesha nakia nakisha nakita nam nana nancee nancey nanci nancie
nanette nannette nannie naoma naomi napoleon narcisa natacha natalia natalya natasha natashia nathalie
nathanael nathanial nathaniel natisha natividad natosha neal necole ned neda nedra neely neida neil nelda
nelia nelida nell nella nelle nellie nelly nelson nena nenita neoma neomi nereida nerissa nery nestor neta
nettie neva nevada neville newton nga ngan ngoc nguyet nia nichelle nichol nichole nicholle nick nicki nickie
nickolas nickole nicky nicol nicola nicolas nicolasa nicolette nicolle nida nidia niesha nieves nigel niki
nikia nikita nikki nikole nila nilda nilsa nina ninfa nisha nita noble nobuko noe noelia noella noelle noemi
nohemi nola nolan noma nora norah norbert norberto noreen norene noriko norine norman normand norris nova
novella nubia nydia nyla obdulia ocie octavia octavio oda odelia odell odessa odette odilia odis ofelia ola
olen olene oleta olevia olimpia olin olinda oliva oliver ollie olympia oma omer ona oneida onie onita opal
ophelia ora oralee oralia oren oretha orlando orpha orval orville ossie osvaldo oswaldo otelia otha otilia
otis otto ouida owen ozell ozella ozie pablo paige palma palmer palmira pam pamala pamelia pamella pamila
pamula pandora pansy paola parker parthenia particia pasquale pasty patience patria patrica patrice patrina
patsy patti pattie patty paulene pauletta paulette paulina pauline paulita paz pearl pearle pearlene pearlie
pearline pearly pedro peggie pei penelope penney penni pennie percy perla perry pete petra petrina petronila
phebe phil phillip phillis philomena phoebe phung phuong phylicia phylis phyliss pia piedad pilar pinkie piper
pok polly porfirio porsche porsha portia preston pricilla princess priscila priscilla providencia prudence
pura qiana queenie quentin quiana quincy quinn quintin quinton quyen rachael rachal racheal rachele rachell
rachelle racquel rae raeann raelene rafael rafaela raguel raina raisa raleigh ramiro ramon ramona ramonita
rana ranae randa randal randall randee randell randi randolph ranee raphael raquel rashad rasheeda rashida
raul raven ray raye rayford raylene raymon raymonde raymundo rayna rea reagan reanna reatha reba rebbeca
rebbecca rebeca rebecka rebekah reda reed reena refugia refugio regan regena regenia reggie reginald regine
reginia reid reiko reina reinaldo reita rema remedios remona rena renae renaldo renata renate renato renay
renda rene renea renee renetta renita renna ressie reta retha retta reuben reva rey reyes reyna reynalda
reynaldo rhea rheba rhett rhiannon rhoda rhona rhonda ria ricarda ricardo richelle richie rick rickey ricki
rickie ricky rico rigoberto rikki riley rima rina risa riva rivka rob robbi robbie robbin robby robbyn robena
roberta robt robyn rocco rochel rochell rochelle rocio roderick rodger rodney rodolfo rodrick rodrigo rogelio
roland rolanda rolande rolando rolf rolland roma romaine romana romelia romeo romona ron rona ronda roni ronna
ronni ronnie ronny roosevelt rory rosa rosalba rosalee rosalia rosalie rosalina rosalind rosalinda rosaline
rosalva rosalyn rosamaria rosamond rosana rosann rosanna rosanne rosaria rosario rosaura roscoe roseann
roseanna roseanne roselee roselia roseline rosella roselle roselyn rosemarie rosemary rosena rosenda rosendo
rosetta rosette rosia rosie rosina rosio rosita roslyn ross rossana rossie rosy rowena roxana roxane roxann
roxanna roxanne roxie roxy roy royce rozanne rozella ruben rubi rubie rubin rubye rudolf rudolph rudy rueben
rufina rufus rupert russ russel rusty rutha ruthann ruthanne ruthe ruthie ryann sabina sabine sabra sabrina
sacha sachiko sade sadie sadye sage sal salena salina salley sallie sally salome salvador salvatore sam samara
samatha samella samira sammie sammy samual sana sanda sandee sandi sandie sandy sanford sang sanjuana
sanjuanita sanora santa santana santiago santina santo santos sarai saran sari sarina sarita sasha saturnina
sau saul saundra savanna savannah scarlet scarlett scot scottie scotty season sebastian sebrina seema selena
selene selina selma sena senaida september serafina serena sergio serina serita seth setsuko seymour shad shae
shaina shakia shakira shakita shala shalanda shalon shalonda shameka shamika shan shana shanae shanda shandi
shandra shane shaneka shanel shanell shanelle shani shanice shanika shaniqua shanita shanna shannan shannon
shanon shanta shantae shantay shante shantel shantell shantelle shanti shaquana shaquita shara sharan sharda
sharee sharell sharen shari sharice sharie sharika sharilyn sharita sharla sharleen sharlene sharmaine
sharolyn sharonda sharri sharron sharyl sharyn shasta shaun shauna shaunda shaunna shaunta shaunte shavon
shavonda shavonne shawana shawanda shawanna shawn shawna shawnda shawnee shawnna shawnta shay shayla shayna
shayne shea sheba sheena sheila sheilah shela shelba shelby sheldon shelia shella shelley shelli shellie
shelly shelton shemeka shemika shena shenika shenita shenna shera sheree sherell sheri sherice sheridan sherie
sherika sherill sherilyn sherise sherita sherlene sherley sherly sherlyn sherman sheron sherrell sherri
sherrie sherril sherrill sherron sherry sherryl sherwood shery sheryl sheryll shiela shila shiloh shin shira
shirely shirl shirlee shirleen shirlene shirly shizue shizuko shon shona shonda shondra shonna shonta shoshana
shu shyla sibyl sid sidney sierra signe sigrid silas silva silvana silvia sima simon simona simone simonne
sina sindy siobhan sirena siu sixta skye slyvia socorro soila solange soledad solomon somer sommer son sona
sondra song sonia sonja sonny sonya soo sook sophie soraya sparkle spencer stacee stacey staci stacia stacie
stacy stan stanford stanley stanton starla starr stasia stefan stefani stefania stefanie stefany steffanie
stella stepanie stephaine stephan stephane stephani stephania stephany stephenie stephine stephnie steve
stevie stewart stormy stuart suanne sudie sue sueann suellen suk sulema sumiko sunday sung sunni sunshine
susana susann susanna susannah susanne susie susy suzan suzann suzanna suzanne suzette suzi suzie suzy
svetlana sybil syble sylvester sylvia sylvie synthia syreeta tabatha tabetha tabitha tad tai taina taisha
tajuana takako takisha talia talisha talitha tam tama tamala tamar tamara tamatha tambra tameika tameka
tamekia tamela tamera tamesha tami tamica tamie tamika tamiko tamisha tammara tammera tammi tammie tamra tana
tandra tandy taneka tanesha tangela tania tanika tanisha tanja tanna tanner tanya tara tarah taren tari tarra
tarsha taryn tasha tashia tashina tasia tatiana tatum tatyana taunya tawana tawanda tawanna tawna tawny tawnya
taylor tayna ted teddy teena tegan teisha telma temeka temika tempie temple tena tenesha tenisha tennie
tennille teodora teodoro teofila tequila tera tereasa terence terese teresia teresita teressa teri terica
terina terisa terra terrance terrell terrence terresa terri terrie terrilyn tesha tess tessa tessie thad
thaddeus thalia thao thea theda thelma theo theodora theodore theola therese theresia theressa theron thersa
thi thomasena thomasina thomasine thora thresa thu thurman thuy tia tiana tianna tiara tien tiera tierra
tiesha tifany tiffaney tiffani tiffanie tiffany tiffiny tijuana tilda tillie tim timika timmy tinisha tisa
tish tisha titus tobi tobias tobie toby toccara tod toi tom tomas tomasa tomeka tomi tomika tomiko tommie
tommy tommye tomoko tona tonda tonette toney toni tonia tonie tonisha tonita tonja tonya tora tori torie torri
torrie tory tosha toshia toshiko tova towanda toya tracee tracey traci tracie tran trang travis treasa treena
trena trent trenton tresa tressa tressie treva trevor trey tricia trina trinh trinidad trinity trish trisha
trista tristan troy trudi trudie trudy trula truman tuan tula tuyet twana twanda twanna twila twyla tyesha
tyisha tynisha tyra tyree tyrell tyron tyrone tyson ula ulrike ulysses una ursula usha ute vada valarie valda
valencia valene valentin valentine valeri valeria valery vallie valorie valrie vance vanda vanesa vanetta
vania vanita vanna vannesa vannessa vashti vasiliki vaughn veda velda velia vella velma velva velvet vena
venessa venetta venice venita vennie venus veola vera verda verdell verdie verena vergie verla verlene verlie
verline vern verna vernell vernetta vernia vernice vernie vernita vernon verona veronica veronika veronique
versie vertie vesta veta vicenta vicente vickey vicki vickie vicky victorina vida viki vikki vilma vina vince
vincenza vincenzo vinita vinnie viola violeta violette virgen virgie virgil virgilio virgina vita vito viva
vivan vivian viviana vivien vivienne von voncile vonda vonnie wai waldo walker wallace wally walton waltraud
wan waneta wanetta wanita warner warren wava waylon weldon wen wendell wendi wendie wendolyn wendy wenona
werner wes wesley weston whitley whitney wilber wilbert wilbur wilburn wilda wiley wilford wilfred wilfredo
wilhelmina wilhemina willa willard willena willene willetta willette willia williams willian williemae willis
willodean willow willy wilma wilmer wilson wilton windy winford winfred winifred winnie winnifred winona
winston wonda woodrow wyatt wynell wynona xavier xenia xiao xiomara xochitl xuan yadira yaeko yael yahaira
yajaira yan yang yanira yasmin yasmine yasuko yee yelena yer yesenia yessenia yetta yevette ying yoko yolande
yolando yolonda yon yong yoshie yoshiko youlanda yuette yuk yukiko yuko yulanda yun yung yuonne yuri yuriko
yvette yvone yvonne zachariah zachery zack zackary zada zaida zana zandra zane zelda zella zelma zena zenaida
zenia zenobia zetta zina zita zoe zofia zoila zola zona zonia zora zoraida zula zulema zulma
""".split())
